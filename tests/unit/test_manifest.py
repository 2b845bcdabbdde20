from __future__ import annotations

import re
import tomllib
from pathlib import Path

import msgspec

from backtester.manifest import (
    CodeVersion,
    DataInput,
    code_version,
    dependency_versions,
    derive_run_id,
    package_sha256,
    runtime_dependencies,
    utc_now,
)
from backtester.strategies import SmaCross

REPO = Path(__file__).resolve().parents[2]

CODE = CodeVersion(
    package_version="0.1.0",
    code_sha256="c" * 64,
    strategy_sha256=None,
    git_sha="abc",
    git_dirty=False,
)


def entry(sha256: str) -> DataInput:
    return DataInput(
        symbol="BTC/USDT",
        source="file",
        path="bars.parquet",
        sha256=sha256,
        rows=10,
        first_ts="2024-03-01T00:00:00Z",
        last_ts="2024-03-01T00:09:00Z",
    )


def test_run_id_is_16_hex_from_config_data_and_code() -> None:
    run_id = derive_run_id("a" * 64, [entry("d" * 64)], CODE)
    assert re.fullmatch(r"[0-9a-f]{16}", run_id)
    assert derive_run_id("a" * 64, [entry("d" * 64)], CODE) == run_id
    assert derive_run_id("b" * 64, [entry("d" * 64)], CODE) != run_id
    assert derive_run_id("a" * 64, [entry("e" * 64)], CODE) != run_id
    changed_code = msgspec.structs.replace(CODE, code_sha256="f" * 64)
    assert derive_run_id("a" * 64, [entry("d" * 64)], changed_code) != run_id


def test_run_id_ignores_git_facts_and_data_path() -> None:
    other_commit = msgspec.structs.replace(CODE, git_sha="def", git_dirty=True)
    moved = msgspec.structs.replace(entry("d" * 64), path="moved.parquet")
    base = derive_run_id("a" * 64, [entry("d" * 64)], CODE)
    assert derive_run_id("a" * 64, [moved], other_commit) == base


def test_builtin_strategy_is_covered_by_the_package_hash() -> None:
    version = code_version(SmaCross)
    assert version.strategy_sha256 is None
    assert version.code_sha256 == package_sha256()


def test_strategy_outside_the_package_is_hashed() -> None:
    # This test module is outside the package, so a strategy defined here counts as user code.
    class Local(SmaCross):
        pass

    assert code_version(Local).strategy_sha256 is not None


def test_wall_clock_stamps_are_utc_iso() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", utc_now())


def test_recorded_dependencies_are_the_declared_runtime_ones() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = sorted({re.match(r"[A-Za-z0-9._-]+", dep)[0] for dep in project["dependencies"]})
    assert runtime_dependencies() == declared
    assert set(dependency_versions()) == set(declared)
    assert "pytest" not in dependency_versions()
