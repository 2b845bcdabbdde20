"""`compare`: stats side by side with differences, and the inputs that differ named."""

from __future__ import annotations

from pathlib import Path

import pytest

from backtester import RunResult
from backtester.report.compare import compare_page, compare_runs, stats_rows, verdict
from tests.report_support import GOLDEN_BARS, golden_run, write_run_dir


@pytest.fixture(scope="module")
def other_run() -> RunResult:
    return golden_run(rows=5_000, seed=8, fast=12)


def test_config_seed_and_code_differences_are_named(
    tmp_path: Path, small_run: RunResult, other_run: RunResult
) -> None:
    a = write_run_dir(small_run, tmp_path, "run-a", GOLDEN_BARS)
    b = write_run_dir(other_run, tmp_path, "run-b", GOLDEN_BARS, git_sha="1" * 40)
    run_a, run_b, differences = compare_runs(a, b)
    found = {(d.section, d.key): (d.a, d.b) for d in differences}
    assert found[("config", "strategy.params.fast")] == (10, 12)
    assert found[("config", "seed")] == (7, 8)
    assert found[("code", "git_sha")] == ("0" * 40, "1" * 40)
    assert found[("result", "digest")] == (small_run.digest, other_run.digest)
    assert not any(d.section == "data" for d in differences)
    assert (
        verdict(differences)
        == "The inputs differ in code, config; the results have different digests."
    )
    page = compare_page(run_a, run_b, differences)
    assert 'data-chart="equity-overlay"' in page and "strategy.params.fast" in page


def test_changed_data_hash_is_a_data_difference(tmp_path: Path, small_run: RunResult) -> None:
    a = write_run_dir(small_run, tmp_path, "run-a", GOLDEN_BARS)
    b = write_run_dir(small_run, tmp_path, "run-b", GOLDEN_BARS)
    manifest = (b / "manifest.json").read_text()
    (b / "manifest.json").write_text(manifest.replace('"sha256": "', '"sha256": "00', 1))
    differences = compare_runs(a, b)[2]
    assert [(d.section, d.key) for d in differences] == [("data", "BTC/USDT sha256")]
    assert verdict(differences) == "The inputs differ in data; the results have the same digest."


def test_same_inputs_with_different_digests_are_called_not_reproducible(
    tmp_path: Path, small_run: RunResult
) -> None:
    a = write_run_dir(small_run, tmp_path, "run-a", GOLDEN_BARS)
    b = write_run_dir(small_run, tmp_path, "run-b", GOLDEN_BARS)
    identical = compare_runs(a, b)[2]
    assert identical == []
    assert verdict(identical) == "Same inputs, same digest: the two runs are identical."
    manifest = (b / "manifest.json").read_text()
    (b / "manifest.json").write_text(manifest.replace(small_run.digest, "f" * 32))
    assert "not reproducible" in verdict(compare_runs(a, b)[2])


def test_stat_differences_are_b_minus_a_for_numbers_only() -> None:
    rows = stats_rows({"sharpe": 1.5, "start": "x", "trades": 4}, {"sharpe": 1.0, "start": "y"})
    assert rows == [
        ("sharpe", 1.5, 1.0, -0.5),
        ("start", "x", "y", None),
        ("trades", 4, None, None),
    ]
