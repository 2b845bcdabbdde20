"""`python -m backtester report DIR` and `compare A B`, as a user runs them."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from backtester import RunResult
from backtester.cli import main
from backtester.report.commands import add_report_flag, report_after_run
from tests.report_support import GOLDEN_BARS, REPO, write_run_dir


def test_compare_prints_the_stats_side_by_side_and_writes_the_page(
    tmp_path: Path, small_run: RunResult, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_run_dir(small_run, tmp_path / "runs", "run-a", GOLDEN_BARS)
    b = write_run_dir(small_run, tmp_path / "runs", "run-b", GOLDEN_BARS, git_sha="1" * 40)
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "final_equity" in out and "B - A" in out
    assert f"code    git_sha: '{'0' * 40}' -> '{'1' * 40}'" in out
    assert (tmp_path / "runs" / "compare_run-a_run-b.html").is_file()


def test_report_of_a_missing_directory_is_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.strip().endswith("not a run directory (no manifest.json)")


def test_core_library_imports_without_the_plotting_library() -> None:
    """The report extra is optional: with Bokeh unimportable, the library and the CLI still load, and
    `report` says which extra to install."""
    code = (
        "import sys; sys.modules['bokeh'] = None\n"
        "import backtester, backtester.results, backtester.cli\n"
        "from backtester.report import commands\n"
        "commands.require_report_extra()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "pip install 'backtester[report]'" in done.stderr


def test_only_the_report_package_imports_bokeh_or_pandas() -> None:
    import ast

    offenders = []
    for path in (REPO / "backtester").rglob("*.py"):
        if path.is_relative_to(REPO / "backtester" / "report"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in ("bokeh", "pandas")
            ]
    assert offenders == []


def test_run_report_flag_writes_the_report_after_a_run(
    tmp_path: Path, small_run: RunResult, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_report_flag(parser)
    run_dir = write_run_dir(small_run, tmp_path / "runs", "run-a", GOLDEN_BARS)
    report_after_run(parser.parse_args([]), run_dir)
    assert not (run_dir / "report.html").exists()
    report_after_run(parser.parse_args(["--report"]), run_dir)
    assert (run_dir / "report.html").is_file()
    assert capsys.readouterr().out == f"report: {run_dir / 'report.html'}\n"
