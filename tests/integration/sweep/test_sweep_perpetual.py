"""A sweep over a perpetual run config: its mark and funding sources reach every point's run, and a
point's row is the run `python -m backtester run` makes of that point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl

from backtester import Backtest, Instrument
from backtester.runs.runner import replay
from backtester.strategies import SmaCross
from backtester.sweep.config import load_sweep_config
from backtester.sweep.plan import build_plan
from backtester.sweep.results import RESULTS
from tests.sweep_support import REPO, subprocess_env

PERPETUAL = REPO / "configs" / "perp_short.toml"


def test_every_point_of_a_perpetual_sweep_is_the_single_run_of_that_point(tmp_path: Path) -> None:
    config = tmp_path / "sweep.toml"
    config.write_text(f'name = "perp"\nbase = "{PERPETUAL}"\n[grid]\nfast = [2, 3]\n')
    command = [sys.executable, "-m", "backtester", "sweep", str(config)]
    command += ["--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    done = subprocess.run(
        [*command, "--workers", "1"],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (sweep_dir,) = (tmp_path / "out" / "sweeps").iterdir()
    table = pl.read_parquet(sweep_dir / RESULTS)
    plan = build_plan(load_sweep_config(config))
    assert table.height == len(plan.runs) == 2
    for run, row in zip(plan.runs, table.iter_rows(named=True), strict=True):
        single = replay(run.spec, "point")
        assert row["status"] == "ok"
        assert row["run_id"] == single.run_id
        assert row["digest"] == single.result.digest
        # Funding changes the result, so a worker that dropped the funding source would differ.
        assert single.result.stats["funding_paid"] != 0
        assert row["funding_paid"] == single.result.stats["funding_paid"]


def test_optimizing_a_perpetual_backtest_runs_each_point_with_its_mark_and_funding(
    tmp_path: Path,
) -> None:
    data = REPO / "tests" / "data"
    bars = pl.read_csv(data / "freqtrade" / "freqtrade_XRP-USDT-USDT_1h_futures.csv")
    window = pl.col("timestamp_ms").is_between(1_637_164_800_000, 1_637_316_000_000, closed="left")
    bars = bars.filter(window)
    bt = Backtest(
        bars,
        SmaCross,
        cash=10_000.0,
        fee_rate=0.0004,
        instrument=Instrument("XRP/USDT:USDT", kind="perpetual", leverage=2),
        mark=data / "freqtrade" / "freqtrade_XRP-USDT-USDT_1h_mark.csv",
        funding=data / "freqtrade_XRP-USDT-USDT_8h_funding_rate.csv",
    )
    found = bt.optimize(fast=[2, 3], slow=6, short=True, workers=1, out=tmp_path)
    assert found.table.height == 2
    for row in found.table.iter_rows(named=True):
        single = bt.run(fast=row["param.fast"], slow=6, short=True)
        assert single.stats["funding_paid"] != 0
        assert (row["status"], row["digest"]) == ("ok", single.digest)
