"""A stop-and-reverse SMA cross on a perpetual at leverage 1 gives backtesting.py's trades, shorts
included (scripts/parity_backtesting_py.py runs the whole month)."""

from __future__ import annotations

import polars as pl

from scripts.parity_backtesting_py import DATA, compare


def test_stop_and_reverse_sma_cross_trades_as_backtesting_py_does() -> None:
    frame = pl.read_parquet(DATA).head(6_000)
    trades, problems = compare(frame, fast=10, slow=30, fee=0.0004)
    assert problems == []
    assert len(trades) > 100
    assert {t.side for t in trades} == {"long", "short"}
