"""A sweep over a run config with a given higher-timeframe series: the series travels to the workers
over NATS with the bars, each row is the single run of its point, and `Backtest.optimize` on the
same backtest gives the same table and digest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl

from backtester import Backtest
from backtester.cli import main
from backtester.runs.runner import replay
from backtester.strategies import HourlyTrendCross
from backtester.sweep.config import load_sweep_config
from backtester.sweep.plan import build_plan
from backtester.sweep.results import MANIFEST, RESULTS, read_manifest
from tests.sweep_support import REPO, small_data, subprocess_env

HOURS = REPO / "golden" / "data" / "binance_BTC-USDT_1h.csv"
# 2024-02-28 00:00 .. 2024-03-03 00:00 UTC: the hours of the small data and two days before them.
WINDOW = pl.col("timestamp_ms").is_between(1_709_078_400_000, 1_709_424_000_000, closed="left")
GRID = {"fast": [5, 8], "slow": [20]}


def test_a_sweep_with_a_given_series_is_its_single_runs_and_optimize_gives_the_same_table(
    tmp_path: Path,
) -> None:
    bars = small_data(tmp_path / "bars.parquet")
    hours = tmp_path / "hours.csv"
    pl.read_csv(HOURS).filter(WINDOW).write_csv(hours)
    config = tmp_path / "sweep.toml"
    config.write_text(
        f"""name = "higher"
seed = 11

[grid]
fast = {GRID["fast"]}
slow = {GRID["slow"]}

[base]
cash = 10000.0

[[base.data]]
kind = "file"
path = {json.dumps(str(bars))}
symbol = "BTC/USDT"

[[base.data]]
kind = "file"
path = {json.dumps(str(hours))}
symbol = "BTC/USDT"
series = "higher"
timeframe = "1h"

[base.strategy]
name = "HourlyTrendCross"

[base.strategy.params]
trend_hours = 6

[base.fees]
kind = "fixed"
rate = 0.001
"""
    )
    # --workers 1: a worker process fed over the sweep's own nats-server on loopback.
    command = [sys.executable, "-m", "backtester", "sweep", str(config), "--workers", "1"]
    command += ["--out", str(tmp_path / "cli"), "--cache-dir", str(tmp_path / "cache")]
    done = subprocess.run(
        command,
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (cli,) = (tmp_path / "cli" / "sweeps").iterdir()
    table = pl.read_parquet(cli / RESULTS)
    # Both series were sent to the worker as files named by their content.
    cached = sorted(p.name for p in (tmp_path / "cache" / "data").iterdir())
    assert len(cached) == 2
    assert len(read_manifest(cli / MANIFEST).data) == 2

    plan = build_plan(load_sweep_config(config))
    assert table.height == len(plan.runs) == 2
    resampled = Backtest(str(bars), HourlyTrendCross, cash=10_000.0, fee_rate=0.001)
    for run, row in zip(plan.runs, table.iter_rows(named=True), strict=True):
        single = replay(run.spec, "point")
        assert row["status"] == "ok"
        assert (row["run_id"], row["digest"]) == (single.run_id, single.result.digest)
        # A worker that resampled the hours instead would have made another run.
        params = {"fast": row["param.fast"], "slow": 20, "trend_hours": 6}
        assert resampled.run(**params).digest != row["digest"]

    bt = Backtest(
        str(bars),
        HourlyTrendCross,
        cash=10_000.0,
        fee_rate=0.001,
        higher_timeframes={"1h": str(hours)},
    )
    found = bt.optimize(**GRID, trend_hours=6, workers=1, seed=11, out=tmp_path / "nb")
    assert found.table.equals(table)
    assert found.digest == read_manifest(cli / MANIFEST).digest


def test_walk_forward_keeps_the_given_series_history_in_every_window(tmp_path: Path) -> None:
    bars = small_data(tmp_path / "bars.parquet")
    hours = tmp_path / "hours.csv"
    pl.read_csv(HOURS).filter(WINDOW).write_csv(hours)
    bt = Backtest(
        str(bars),
        HourlyTrendCross,
        cash=10_000.0,
        fee_rate=0.001,
        higher_timeframes={"1h": str(hours)},
    )
    found = bt.walk_forward(
        train="12h",
        test="6h",
        **GRID,
        trend_hours=6,
        maximize="total_return_pct",
        seed=3,
        workers=1,
        out=tmp_path / "wf",
    )
    assert found.folds.height >= 2 and len(found.runs) == found.folds.height
    given = pl.read_csv(hours)
    for run_dir, fold in zip(found.runs, found.folds.iter_rows(named=True), strict=True):
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert [entry["series"] for entry in manifest["data"]] == ["ohlcv", "higher"]
        assert main(["verify", str(run_dir)]) == 0
        # The out-of-sample run is the notebook run over its window, the hours before it included.
        start, end = (int(fold[k].timestamp() * 1000) for k in ("test_start", "test_end"))
        window = pl.read_parquet(bars).filter(pl.col("timestamp_ms").is_between(start, end - 1))
        alone = Backtest(
            window,
            HourlyTrendCross,
            cash=10_000.0,
            fee_rate=0.001,
            higher_timeframes={"1h": given.filter(pl.col("timestamp_ms") < end)},
        )
        params = {"fast": fold["param.fast"], "slow": 20, "trend_hours": 6}
        assert alone.run(**params).digest == manifest["digest"]
