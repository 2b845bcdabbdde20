"""A stop-and-reverse SMA cross on a perpetual at leverage 1 gives backtesting.py's trades, shorts
included, and so do its entries as brackets, `buy(sl=..., tp=...)` with prices from the signal
bar's close, exits on the entry's own bar included (scripts/parity_backtesting_py.py runs the
whole month)."""

from __future__ import annotations

from collections import Counter

import polars as pl

from scripts.parity_backtesting_py import DATA, Exits, compare


def test_stop_and_reverse_sma_cross_trades_as_backtesting_py_does() -> None:
    frame = pl.read_parquet(DATA).head(6_000)
    trades, problems = compare(frame, fast=10, slow=30, fee=0.0004)
    assert problems == []
    assert len(trades) > 100
    assert {t.side for t in trades} == {"long", "short"}


def test_sma_cross_brackets_trade_as_backtesting_py_buy_with_sl_and_tp() -> None:
    frame = pl.read_parquet(DATA).head(6_000)
    trades, problems = compare(frame, fast=10, slow=30, fee=0.0004, exits=Exits(0.1, 0.15))
    assert problems == []
    reasons = Counter(t.exit_reason for t in trades)
    assert min(reasons["stop_loss"], reasons["take_profit"], reasons["signal"]) > 5, reasons
    on_entry_bar = Counter(t.exit_reason for t in trades if t.entry_bar == t.exit_bar)
    assert min(on_entry_bar["stop_loss"], on_entry_bar["take_profit"]) > 5, on_entry_bar
    assert {t.side for t in trades} == {"long", "short"}
