"""Volume indicators: OBV (equal to TA-Lib's) and a session-anchored VWAP (not in TA-Lib)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from backtester.compiled import ta_oscillators, ta_volatility
from backtester.data.timeframes import timeframe_ms
from backtester.indicators._inputs import Column, as_columns, empty_like, first_valid

NS_PER_MS = 1_000_000
# 1970-01-01 was a Thursday: ISO weeks start 3 days before the epoch's week boundary.
_WEEK_NS = 7 * 86_400_000 * NS_PER_MS
_MONDAY_OFFSET_NS = 3 * 86_400_000 * NS_PER_MS


def obv(close: Column, volume: Column) -> np.ndarray:
    """On-balance volume: volume added on an up close, subtracted on a down close, starting from
    the first bar's volume."""
    c, v = as_columns(close=close, volume=volume)
    out = empty_like(c)
    ta_oscillators.obv(c, v, first_valid(c, v), out)
    return out


def vwap(
    high: Column,
    low: Column,
    close: Column,
    volume: Column,
    timestamps: Any,
    anchor: str = "1d",
) -> np.ndarray:
    """Volume-weighted average of the typical price (high + low + close) / 3 since the session
    began: sessions are UTC-aligned `anchor` periods ("1d", "4h", ... or "1w": weeks from Monday
    00:00 UTC). `timestamps` are the bars' open times (int64 UTC nanoseconds, or a polars or
    numpy datetime column). NaN until the session has traded volume."""
    h, low_, c, v = as_columns(high=high, low=low, close=close, volume=volume)
    ts = _nanoseconds(timestamps)
    if len(ts) != len(c):
        raise ValueError(f"timestamps has {len(ts)} rows, the bars {len(c)}")
    if anchor == "1w":
        session = (ts + _MONDAY_OFFSET_NS) // _WEEK_NS
    else:
        session = ts // (timeframe_ms(anchor) * NS_PER_MS)
    typical = (h + low_ + c) / 3.0
    out = empty_like(c)
    ta_volatility.session_vwap(typical * v, v, np.ascontiguousarray(session), out)
    return out


def _nanoseconds(timestamps: Any) -> np.ndarray:
    if isinstance(timestamps, pl.Series):
        if timestamps.dtype.is_temporal():
            return timestamps.dt.epoch("ns").to_numpy()
        return timestamps.cast(pl.Int64).to_numpy()
    array = np.asarray(timestamps)
    if np.issubdtype(array.dtype, np.datetime64):
        return array.astype("datetime64[ns]").astype(np.int64)
    return array.astype(np.int64)
