"""The higher-timeframe views of a run: each timeframe a strategy declares, for each instrument,
resampled from its base stream or taken from a series the run was given (`"1h"` for the primary
instrument, `"ETH/USDT@1h"` for another)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from backtester.data.errors import DataError
from backtester.data.resample import resample
from backtester.data.timeframes import timeframe_ms
from backtester.metrics.stats import bar_interval_ns
from backtester.strategy.timeframes import TimeframeView

NS_PER_MS = 1_000_000


def timeframe_views(
    data: Mapping[str, pl.DataFrame],
    declared: Mapping[str, int],
    given: Mapping[str, pl.DataFrame] | None = None,
) -> dict[tuple[str, str], TimeframeView]:
    """(instrument, timeframe) -> its view, for every declared timeframe and instrument."""
    given = given or {}
    if not declared and not given:
        return {}
    primary = next(iter(data))
    unused = set(given) - {f"{s}@{tf}" for s in data for tf in declared} - set(declared)
    if unused:
        raise DataError(
            f"higher-timeframe series {sorted(unused)} match no timeframe the strategy declares "
            f"({', '.join(declared) or 'none'})"
        )
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
