"""The project's packaging metadata, built by the real build backend the way an install builds it."""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Builds the wheel metadata in a scratch directory, every warning recorded, and prints what a
# `pip install` would show: the deprecation warnings, then the METADATA file.
BUILD_METADATA = """
import sys, warnings
from pathlib import Path
from setuptools import build_meta
out = sys.argv[1]  # the backend rewrites sys.argv as a setup.py command line
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    name = build_meta.prepare_metadata_for_build_wheel(out)
for warning in caught:
    if "deprecat" in (warning.category.__name__ + str(warning.message)).lower():
        print("DEPRECATION:", warning.category.__name__, str(warning.message).splitlines()[0])
print((Path(out) / name / "METADATA").read_text())
"""


def test_the_license_is_an_spdx_expression_with_its_file() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text


def test_building_the_metadata_gives_no_deprecation_warning(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BUILD_METADATA, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "DEPRECATION" not in done.stdout, done.stdout
    assert "deprecated" not in done.stderr.lower(), done.stderr
    metadata = done.stdout.splitlines()
    assert "License-Expression: MIT" in metadata
    assert "License-File: LICENSE" in metadata
