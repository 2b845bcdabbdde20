"""Sessions of bars: UTC-aligned periods ("1d", "4h", ..., or "1w": weeks from Monday 00:00 UTC),
identified by an integer per bar."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from backtester.data.timeframes import timeframe_ms

NS_PER_MS = 1_000_000
# 1970-01-01 was a Thursday: ISO weeks start 3 days before the epoch's week boundary.
_WEEK_NS = 7 * 86_400_000 * NS_PER_MS
_MONDAY_OFFSET_NS = 3 * 86_400_000 * NS_PER_MS


def nanoseconds(timestamps: Any) -> np.ndarray:
    """Bar open times as int64 UTC nanoseconds, from int64 ns or a polars or numpy datetime column."""
    if isinstance(timestamps, pl.Series):
        if timestamps.dtype.is_temporal():
            return np.ascontiguousarray(timestamps.dt.epoch("ns").to_numpy())
        return np.ascontiguousarray(timestamps.cast(pl.Int64).to_numpy())
    array = np.asarray(timestamps)
    if np.issubdtype(array.dtype, np.datetime64):
        return np.ascontiguousarray(array.astype("datetime64[ns]").astype(np.int64))
    return np.ascontiguousarray(array.astype(np.int64))


def session_ids(ts_ns: np.ndarray, anchor: str) -> np.ndarray:
    """The session of each bar (open time in ns): equal ids for bars of one anchor period."""
    if anchor == "1w":
        return np.ascontiguousarray((ts_ns + _MONDAY_OFFSET_NS) // _WEEK_NS)
    return np.ascontiguousarray(ts_ns // (timeframe_ms(anchor) * NS_PER_MS))
