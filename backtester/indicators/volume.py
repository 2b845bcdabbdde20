"""Volume indicators: OBV (equal to TA-Lib's) and a session-anchored VWAP (not in TA-Lib)."""

from __future__ import annotations

from typing import Any

import numpy as np

from backtester.compiled import ta_oscillators, ta_volatility
from backtester.indicators._inputs import Column, as_columns, empty_like, first_valid
from backtester.indicators.sessions import nanoseconds, session_ids


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
    ts = nanoseconds(timestamps)
    if len(ts) != len(c):
        raise ValueError(f"timestamps has {len(ts)} rows, the bars {len(c)}")
    typical = (h + low_ + c) / 3.0
    out = empty_like(c)
    ta_volatility.session_vwap(typical * v, v, session_ids(ts, anchor), out)
    return out
