"""The higher-timeframe views of a run: each timeframe a strategy declares, for each instrument,
resampled from its base stream or taken from a series the run was given (`"1h"` for the primary
instrument, `"ETH/USDT@1h"` for another).

A given series must be one the resampler could have made: bars of exactly that timeframe, opening
on its epoch-aligned grid, a multiple of the base bars, covering every period of the run that
closes in it, and prices of the same instrument (`given_problem`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from backtester.data.columns import iso_ns
from backtester.data.errors import DataError
from backtester.data.resample import resample
from backtester.data.timeframes import format_timeframe, timeframe_ms
from backtester.metrics.stats import bar_interval_ns
from backtester.strategy.timeframes import TimeframeView

NS_PER_MS = 1_000_000


def timeframe_views(
    data: Mapping[str, pl.DataFrame],
    declared: Mapping[str, int],
    given: Mapping[str, pl.DataFrame] | None = None,
) -> dict[tuple[str, str], TimeframeView]:
    """(instrument, timeframe) -> its view, for every declared timeframe and instrument."""
    if not declared and not given:
        return {}
    # Bars of a given series that close after the data's end are in no run's past, not even in
    # `on_start`'s whole view: a resampled series ends there too.
    given = known_by(given or {}, data)
    primary = next(iter(data))
    unused = set(given) - {f"{s}@{tf}" for s in data for tf in declared} - set(declared)
    if unused:
        raise DataError(
            f"higher-timeframe series {sorted(unused)} match no timeframe the strategy declares "
            f"({', '.join(declared) or 'none'})"
        )
    for name, bars in given.items():
        symbol, _, timeframe = name.rpartition("@")
        base = data.get(symbol or primary)
        problem = (
            f"names no instrument of the run ({', '.join(data)})"
            if base is None
            else given_problem(bars, base, timeframe, symbol or primary)
        )
        if problem is not None:
            raise DataError(f"higher-timeframe series {name!r}: {problem}")
    views: dict[tuple[str, str], TimeframeView] = {}
    for symbol, frame in data.items():
        base_ns = frame["ts"].to_numpy()
        base_close = base_ns + bar_interval_ns(base_ns)
        for timeframe, keep in declared.items():
            if not isinstance(keep, int) or keep < 1:
                raise DataError(f"timeframes[{timeframe!r}]: bars to keep must be >= 1, got {keep}")
            span_ns = timeframe_ms(timeframe) * NS_PER_MS
            series = given.get(f"{symbol}@{timeframe}")
            if series is None and symbol == primary:
                series = given.get(timeframe)
            bars = _resampled(frame, base_ns, span_ns, timeframe) if series is None else series
            close_ns = np.ascontiguousarray(bars["ts"].to_numpy() + span_ns)
            closed = np.searchsorted(close_ns, base_close, side="right")
            views[(symbol, timeframe)] = TimeframeView(bars, close_ns, keep, closed)
    return views


def _resampled(
    frame: pl.DataFrame, base_ns: np.ndarray, span_ns: int, timeframe: str
) -> pl.DataFrame:
    source_ns = bar_interval_ns(base_ns)
    if span_ns < source_ns or span_ns % source_ns:
        raise DataError(
            f"timeframe {timeframe!r} is not a multiple of the data's {source_ns // 10**9} s bars"
        )
    columns = [c for c in ("open", "high", "low", "close", "volume") if c in frame.columns]
    table = frame.select((pl.col("ts") // NS_PER_MS).alias("timestamp_ms"), *columns)
    higher = resample(table, source_ns // NS_PER_MS, span_ns // NS_PER_MS)
    return higher.select((pl.col("timestamp_ms") * NS_PER_MS).alias("ts"), *columns)


# A given bar whose close lies this far outside the range its base bars traded in is not theirs; a
# series most of whose bars are so is another instrument's (exchanges' own candles of the same
# instrument agree with the minute bars except at a partial candle).
_PRICE_TOLERANCE = 0.005


def given_problem(
    series: pl.DataFrame, base: pl.DataFrame, timeframe: str, symbol: str
) -> str | None:
    """Why `series` cannot stand for `timeframe` bars of `symbol` resampled from its `base` bars
    (validated frames, `ts` in ns), or None when it can."""
    span_ns = timeframe_ms(timeframe) * NS_PER_MS
    base_ns = base["ts"].to_numpy()
    source_ns = bar_interval_ns(base_ns)
    if span_ns < source_ns or span_ns % source_ns:
        return (
            f"timeframe {timeframe!r} is not a multiple of the {format_timeframe(source_ns // NS_PER_MS)}"
            f" bars of {symbol}"
        )
    ts = series["ts"].to_numpy()
    # The periods the resampler makes of the base bars: those wholly inside them.
    first, end = int(base_ns[0]), int(base_ns[-1]) + source_ns
    needed_from = -(-first // span_ns) * span_ns
    needed_to = end - end % span_ns - span_ns
    if len(ts) == 0:
        return None if needed_from > needed_to else "holds no bars"
    if len(ts) > 1 and (step := bar_interval_ns(ts)) != span_ns:
        return f"holds {format_timeframe(step // NS_PER_MS)} bars, not {timeframe}"
    off_grid = np.flatnonzero(ts % span_ns)
    if len(off_grid):
        return (
            f"the bar at {iso_ns(int(ts[off_grid[0]]))} does not open on the {timeframe} grid "
            f"({timeframe} bars open at multiples of {timeframe} since 1970-01-01 00:00 UTC)"
        )
    if needed_from <= needed_to and (ts[0] > needed_from or ts[-1] < needed_to):
        return (
            f"covers {iso_ns(int(ts[0]))} .. {iso_ns(int(ts[-1]))} (bar opens); the run needs "
            f"its {timeframe} bars from {iso_ns(needed_from)} to {iso_ns(needed_to)}"
        )
    return _price_problem(series, base, span_ns, symbol)


def _price_problem(
    series: pl.DataFrame, base: pl.DataFrame, span_ns: int, symbol: str
) -> str | None:
    ranges = (
        base.group_by((pl.col("ts") // span_ns * span_ns).alias("ts"))
        .agg(pl.col("low").min().alias("base_low"), pl.col("high").max().alias("base_high"))
        .join(series.select("ts", "close"), on="ts")
    )
    if ranges.height == 0:
        return None
    close = ranges["close"].to_numpy()
    outside = (close < ranges["base_low"].to_numpy() * (1 - _PRICE_TOLERANCE)) | (
        close > ranges["base_high"].to_numpy() * (1 + _PRICE_TOLERANCE)
    )
    count = int(outside.sum())
    if 2 * count <= len(close):
        return None
    return (
        f"{count} of its {len(close)} bars close outside the price range the bars of {symbol} "
        "traded in over the same period: the series of another instrument?"
    )


def known_by(
    series: Mapping[str, pl.DataFrame], data: Mapping[str, pl.DataFrame]
) -> dict[str, pl.DataFrame]:
    """The given higher-timeframe series cut to the bars closed by the end of `data` (so a run, and
    each of the look-ahead check's cut runs, sees no more of them than of its data)."""
    if not series:
        return dict(series)
    known = max(int(f["ts"][-1]) + bar_interval_ns(f["ts"].to_numpy()) for f in data.values())
    cut = {}
    for name, frame in series.items():
        span = timeframe_ms(name.rpartition("@")[2]) * NS_PER_MS
        cut[name] = frame.filter(pl.col("ts") + span <= known)
    return cut
