"""Walk-forward on the shipped 1m month (2024-03-01 to 03-22): the CLI with `[walk_forward]` and
`Backtest.walk_forward` give the same folds and out-of-sample runs; fold boundaries are the
expected days; no out-of-sample bar is in its own fold's training window; the stitched curve is
the fold curves carried end to end; the out-of-sample runs verify; the report page shows it all."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from backtester import Backtest
from backtester.cli import main
from backtester.report.walkforward_report import write_walk_forward_report
from backtester.strategies import SmaCross
from backtester.sweep.walkforward import EQUITY, FOLDS, SUMMARY
from backtester.walk_forward import WalkForwardResult
from tests.sweep_support import GOLDEN, REPO, subprocess_env

GRID = {"fast": [5, 10], "slow": [30, 60]}
CONFIG = f"""
name = "wf"
seed = 3
objective = {{ stat = "sharpe", direction = "maximize" }}

[grid]
fast = {GRID["fast"]}
slow = {GRID["slow"]}

[walk_forward]
train = "10d"
test = "4d"

[base]
cash = 10000.0

[[base.data]]
kind = "file"
path = "{GOLDEN}"
symbol = "BTC/USDT"

[base.strategy]
name = "SmaCross"

[base.fees]
kind = "fixed"
rate = 0.001
"""


def _day(day: int) -> datetime:
    return datetime(2024, 3, day, tzinfo=UTC)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("wf")
    config = tmp / "wf.toml"
    config.write_text(CONFIG)
    # One worker: four runs a fold, each shorter than starting another worker process (the tables
    # do not depend on how many ran them: test_sweep_local).
    command = [sys.executable, "-m", "backtester", "sweep", str(config), "--workers", "1"]
    done = subprocess.run(
        [*command, "--out", str(tmp / "runs")],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (directory,) = (tmp / "runs" / "walkforward").iterdir()
    return directory, done.stdout


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> WalkForwardResult:
    bt = Backtest(str(GOLDEN), SmaCross, cash=10_000.0, fee_rate=0.001)
    out = tmp_path_factory.mktemp("wf-nb")
    return bt.walk_forward(train="10d", test="4d", **GRID, seed=3, workers=1, out=out)


def test_the_folds_are_the_expected_days(cli: tuple[Path, str]) -> None:
    folds = pl.read_parquet(cli[0] / FOLDS)
    windows = folds.select("train_start", "train_end", "test_start", "test_end").rows()
    # 21.5 days of data: a third fold would test from 03-19 to 03-23, past the last bar.
    assert windows == [
        (_day(1), _day(11), _day(11), _day(15)),
        (_day(5), _day(15), _day(15), _day(19)),
    ]
    assert folds["points"].to_list() == [4, 4]
    assert "walk-forward" in cli[1] and "out of sample, stitched" in cli[1]


def test_no_out_of_sample_bar_is_in_its_folds_training_window(cli: tuple[Path, str]) -> None:
    directory, _ = cli
    runs = directory.parent.parent
    for fold in pl.read_parquet(directory / FOLDS).iter_rows(named=True):
        sweep = json.loads((runs / "sweeps" / fold["sweep_id"] / "sweep.json").read_text())
        trained = pl.read_parquet(sweep["base"]["data"][0]["path"])["timestamp"]
        assert trained.min() >= fold["train_start"] and trained.max() < fold["train_end"]
        tested = pl.read_parquet(runs / fold["run_id"] / "equity.parquet")["ts"]
        assert tested.min() >= fold["test_start"] and tested.max() < fold["test_end"]
        assert tested.min() > trained.max()
        # The best in-sample point is the one run out of sample.
        table = pl.read_parquet(runs / "sweeps" / fold["sweep_id"] / "results.parquet")
        top = table.sort(["sharpe", "index"], descending=[True, False]).row(0, named=True)
        assert (top["param.fast"], top["param.slow"]) == (fold["param.fast"], fold["param.slow"])
        assert top["sharpe"] == fold["in_sample.sharpe"]


def test_the_stitched_curve_carries_each_fold_on_from_the_last(cli: tuple[Path, str]) -> None:
    directory, _ = cli
    runs = directory.parent.parent
    folds = pl.read_parquet(directory / FOLDS)
    equity = pl.read_parquet(directory / EQUITY)
    growth = 1.0
    for fold in folds.iter_rows(named=True):
        own = pl.read_parquet(runs / fold["run_id"] / "equity.parquet")
        part = equity.filter(pl.col("fold") == fold["fold"])
        assert part["ts"].equals(own["ts"])
        assert part["fold_equity"].equals(own["equity"])
        scaled = (own["equity"] * (growth * 10_000.0 / own["equity"][0])).to_list()
        assert part["equity"].to_list() == pytest.approx(scaled, rel=1e-12)
        growth *= own["equity"][-1] / own["equity"][0]
    assert equity["ts"].is_sorted() and equity["ts"].n_unique() == equity.height
    stats = json.loads((directory / SUMMARY).read_text())["stats"]
    assert stats["total_return_pct"] == pytest.approx(100.0 * (growth - 1.0), rel=1e-9)
    assert stats["bars"] == equity.height


def test_the_notebook_walk_forward_gives_the_same_folds_and_runs(
    cli: tuple[Path, str], notebook: WalkForwardResult
) -> None:
    directory, _ = cli
    summary = json.loads((directory / SUMMARY).read_text())
    assert notebook.digest == summary["digest"]
    # Run and sweep ids name the window files, which live under each output directory.
    same = pl.exclude("sweep_id", "run_id")
    assert notebook.folds.select(same).equals(pl.read_parquet(directory / FOLDS).select(same))
    assert notebook.stats == summary["stats"]
    assert "2 folds" in repr(notebook)


def test_out_of_sample_runs_verify_and_the_report_links_them(
    notebook: WalkForwardResult, tmp_path: Path
) -> None:
    assert main(["verify", str(notebook.runs[-1])]) == 0
    page = write_walk_forward_report(notebook.directory, tmp_path / "wf.html").read_text()
    for run in notebook.runs:
        assert f"<code>{run.name}</code></a>" in page
    assert 'data-chart="equity"' in page and 'data-block="folds"' in page
    assert "2024-03-11 00:00 to 2024-03-15 00:00" in page
    assert notebook.report() == notebook.directory / "report.html"
