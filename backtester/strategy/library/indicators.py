"""Vectorized indicator helpers for strategies' `on_start`."""

from __future__ import annotations

import numpy as np


def tick_scale(prices: np.ndarray, max_decimals: int = 8) -> int | None:
    """The smallest power of ten that puts every price on an integer grid, or None if none up to 1e8."""
    for decimals in range(max_decimals + 1):
        scaled = prices * 10**decimals
        if np.abs(scaled).max(initial=0.0) >= 2**50:
            return None
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6):
            return int(10**decimals)
    return None


def rolling_sum_exact(prices: np.ndarray, window: int, scale: int | None) -> np.ndarray:
    """Window sums, exact in integer ticks when the prices sit on a grid (NaN before the window fills).

    Exact sums let two averages be compared without float rounding deciding ties at random. The result
    is in ticks (integers stored as float64 are exact below 2**53) or, with no grid, in price units.
    """
    n = len(prices)
    out = np.full(n, np.nan)
    if window > n:
        return out
    if scale is not None:
        ticks = np.round(prices * scale).astype(np.int64)
        csum = np.concatenate(([0], np.cumsum(ticks)))
        out[window - 1 :] = (csum[window:] - csum[:-window]).astype(np.float64)
        return out
    csum_f = np.concatenate(([0.0], np.cumsum(prices)))
    out[window - 1 :] = csum_f[window:] - csum_f[:-window]
    return out


def crossovers(fast_sum: np.ndarray, fast: int, slow_sum: np.ndarray, slow: int) -> np.ndarray:
    """+1 where the fast average crosses above the slow one, -1 where it crosses below, else 0.

    Compares `fast_sum * slow` with `slow_sum * fast` (means without dividing), which is exact for sums
    in integer ticks. A cross up at t is fast[t] > slow[t] and fast[t-1] <= slow[t-1]; a cross down
    is fast[t] < slow[t] and fast[t-1] >= slow[t-1]. NaN (window not yet full) never crosses.
    """
    diff = fast_sum * slow - slow_sum * fast
    with np.errstate(invalid="ignore"):
        above, below = diff > 0, diff < 0
        at_or_below, at_or_above = diff <= 0, diff >= 0
    signal = np.zeros(len(diff), dtype=np.int8)
    signal[1:][above[1:] & at_or_below[:-1]] = 1
    signal[1:][below[1:] & at_or_above[:-1]] = -1
    return signal
