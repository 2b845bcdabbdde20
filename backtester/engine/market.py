"""What a run knows of each instrument besides its bars: marks aligned to the bars, funding and expiry
events placed where they happen between bars, and the checks that those series cover the run.

A funding at time f is paid by the position held when f is reached: after every fill of the bars that
closed by f, before any fill of the bar still open at f (a bar is known at its close). So a funding
event is delivered just before the first bar that closes after f, and it is paid at the mark known at
f: the close of the latest mark bar that closed by then (without a mark series, of the latest bar).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from backtester.domain.instrument import Instrument, InstrumentKind
from backtester.domain.marks import MarkBars
from backtester.domain.messages import ContractExpired, FundingRate
from backtester.engine.setup import SetupError
from backtester.metrics.stats import bar_interval_ns

NS_PER_MS = 1_000_000


class Scheduled(NamedTuple):
    """A market event delivered just before row `row` of its instrument's bars (`row` = the number
    of bars: after the last one)."""

    symbol: str
    row: int
    ts: int
    event: FundingRate | ContractExpired


def align_marks(symbol: str, bars: pl.DataFrame, marks: pl.DataFrame | None) -> MarkBars:
    """The mark over each bar: the mark bar of the same open time where the series has the bars'
    timeframe, else the mark known at the bar's close (the close of the latest mark bar closed by
    then) in all four prices; without a series, the bars' own prices."""
    if marks is None:
        return MarkBars(*(bars[c].to_numpy() for c in ("open", "high", "low", "close")))
    ts = bars["ts"].to_numpy()
    mark_ts = marks["ts"].to_numpy()
    step = bar_interval_ns(ts)
    mark_step = bar_interval_ns(mark_ts)
    closes = ts + step
    # Latest mark bar closed by each bar's close (its open + its timeframe <= the bar's close).
    known = np.searchsorted(mark_ts + mark_step, closes, side="right") - 1
    if known[0] < 0:
        raise SetupError(
            f"mark series for {symbol} does not cover the run: it starts "
            f"{_iso(int(mark_ts[0]))}, after the first bar ({_iso(int(ts[0]))}) closes"
        )
    last_close = int(mark_ts[-1]) + mark_step
    if last_close < int(closes[-1]):
        raise SetupError(
            f"mark series for {symbol} does not cover the run: it ends {_iso(last_close)}, "
            f"before the last bar closes ({_iso(int(closes[-1]))})"
        )
    mark_close = marks["close"].to_numpy()
    asof = mark_close[known]
    columns = [asof.copy(), asof.copy(), asof.copy(), asof]
    if mark_step == step:
        same = np.searchsorted(mark_ts, ts)
        same = np.minimum(same, len(mark_ts) - 1)
        aligned = mark_ts[same] == ts
        for k, name in enumerate(("open", "high", "low", "close")):
            columns[k][aligned] = marks[name].to_numpy()[same[aligned]]
    return MarkBars(*columns)


def funding_schedule(
    symbol: str, bars: pl.DataFrame, marks: MarkBars, funding: pl.DataFrame
) -> list[Scheduled]:
    """The funding events inside the run, each before the first bar that closes after it."""
    ts = bars["ts"].to_numpy()
    step = bar_interval_ns(ts)
    closes = ts + step
    times = funding["ts"].to_numpy()
    rates = funding["rate"].to_numpy()
    _check_funding_covers(symbol, times, int(ts[0]), int(closes[-1]))
    rows = np.searchsorted(closes, times, side="right")
    inside = (times >= ts[0]) & (rows < len(ts))
    scheduled: list[Scheduled] = []
    for k in np.flatnonzero(inside):
        row = int(rows[k])
        # The mark known at the funding time: the bar before closed by then (row >= 1 here unless
        # the funding falls in the first bar, where the first bar's open is the mark known).
        mark = float(marks.close[row - 1]) if row > 0 else float(marks.open[0])
        at = int(times[k])
        scheduled.append(
            Scheduled(
                symbol,
                row,
                at,
                FundingRate(
                    instrument=symbol,
                    rate=float(rates[k]),
                    mark_price=mark,
                    ts_event=at,
                    ts_init=at,
                ),
            )
        )
    return scheduled


def expiry_schedule(instrument: Instrument, bars: pl.DataFrame, marks: MarkBars) -> list[Scheduled]:
    """A future's settlement, before the first bar that closes after its expiry (or after the
    last bar when that one closes at the expiry); none when the data ends before it."""
    if instrument.kind is not InstrumentKind.FUTURE:
        return []
    assert isinstance(instrument.expiry, int)
    expiry = instrument.expiry * NS_PER_MS
    ts = bars["ts"].to_numpy()
    closes = ts + bar_interval_ns(ts)
    if expiry > closes[-1]:
        return []
    row = int(np.searchsorted(closes, expiry, side="right"))
    if row == 0:
        raise SetupError(f"{instrument.symbol} expires {_iso(expiry)}, before its first bar closes")
    price = float(marks.close[row - 1])
    event = ContractExpired(
        instrument=instrument.symbol, settlement_price=price, ts_event=expiry, ts_init=expiry
    )
    return [Scheduled(instrument.symbol, row, expiry, event)]


def _check_funding_covers(symbol: str, times: np.ndarray, start: int, end: int) -> None:
    """The series must reach within one funding interval of both ends of the run."""
    interval = int(np.diff(times).max()) if len(times) > 1 else 8 * 3_600 * 10**9
    if times[0] > start + interval or times[-1] < end - interval:
        raise SetupError(
            f"funding series for {symbol} does not cover the run: it runs "
            f"{_iso(int(times[0]))} to {_iso(int(times[-1]))}, the bars {_iso(start)} to "
            f"{_iso(end)} (funding every {interval / 3.6e12:g}h at most)"
        )


def _iso(ns: int) -> str:
    return str(pl.Series([ns]).cast(pl.Datetime("ns", "UTC")).item())
