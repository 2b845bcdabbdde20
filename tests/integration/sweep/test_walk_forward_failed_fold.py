"""A walk-forward fold whose in-sample sweep has no point to run out of sample is an error that
names the fold and its training window: the CLI exits 2 with one line, `Backtest.walk_forward`
raises `FoldFailed`. On the shipped month with train 10d / test 4d, fold 0 trains from 03-01 and
fold 1 from 03-05; a strategy that fails on runs starting 03-05 fails fold 1's sweep only."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from backtester import Backtest
from backtester.cli import main
from backtester.strategies import SmaCross
from backtester.walk_forward import FoldFailed
from tests.sweep_support import GOLDEN

FOLD_1_TRAIN_START_MS = int(datetime(2024, 3, 5, tzinfo=UTC).timestamp() * 1000)
CONFIG = f"""
name = "wf-failing"
seed = 3
objective = {{ stat = "sharpe", direction = "maximize" }}

[grid]
fast = [5, 10]
slow = [30]

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
name = "tests.sweep_strategies:Sleepy"

[base.strategy.params]
fail_from_ms = {FOLD_1_TRAIN_START_MS}

[base.fees]
kind = "fixed"
rate = 0.001
"""


def test_a_fold_whose_in_sample_points_all_fail_ends_the_cli_with_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "wf.toml"
    config.write_text(CONFIG)
    out = tmp_path / "runs"
    args = ["sweep", str(config), "--out", str(out), "--workers", "1"]
    code = main([*args, "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2, err
    (fold_0,) = _fold_sweeps(out, "2024-03-01")
    (fold_1,) = _fold_sweeps(out, "2024-03-05")
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: walk-forward fold 1 (train 2024-03-05 00:00 to 2024-03-15 00:00): all 2 "
        "in-sample points failed (first error: RuntimeError: failing on purpose from "
        f"{FOLD_1_TRAIN_START_MS} ms); nothing to run out of sample (see "
        f"{fold_1 / 'results.parquet'})"
    ]
    assert "Traceback" not in err
    # Fold 0's sweep is kept; no walk-forward result claims the folds.
    assert set(pl.read_parquet(fold_0 / "results.parquet")["status"]) == {"ok"}
    (directory,) = (out / "walkforward").iterdir()
    assert not (directory / "walkforward.json").exists()
    assert not (directory / "folds.parquet").exists()


def test_a_fold_without_a_point_to_rank_raises_fold_failed_from_the_notebook(
    tmp_path: Path,
) -> None:
    # A slow average longer than the training window: no trades, so no Sharpe ratio to rank by.
    bt = Backtest(str(GOLDEN), SmaCross, cash=10_000.0, fee_rate=0.001)
    with pytest.raises(FoldFailed) as failed:
        bt.walk_forward(
            train="10d", test="4d", fast=[5, 10], slow=[20_000], workers=1, out=tmp_path
        )
    assert str(failed.value).startswith(
        "walk-forward fold 0 (train 2024-03-01 00:00 to 2024-03-11 00:00): none of the 2 "
        "successful in-sample points has a sharpe to rank by"
    )


def _fold_sweeps(out: Path, train_start: str) -> list[Path]:
    """The sweep directories whose training data starts on `train_start` (a date)."""
    found = []
    for directory in sorted((out / "sweeps").iterdir()):
        sweep = json.loads((directory / "sweep.json").read_text())
        first = pl.read_parquet(sweep["base"]["data"][0]["path"])["timestamp"].min()
        if str(first).startswith(train_start):
            found.append(directory)
    return found
