"""Vectorized indicator helpers for strategies' `on_start`."""

from __future__ import annotations

import numpy as np

from backtester.compiled.indicators import crossover_signal, grid_decimals, window_sums_in_ticks


def tick_scale(prices: np.ndarray, max_decimals: int = 8) -> int | None:
    """The smallest power of ten that puts every price on an integer grid, or None if none up to 1e8."""
    decimals = grid_decimals(np.ascontiguousarray(prices, dtype=np.float64), max_decimals)
    return None if decimals < 0 else int(10**decimals)


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
        window_sums_in_ticks(np.ascontiguousarray(prices, dtype=np.float64), window, scale, out)
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
    signal = np.zeros(len(fast_sum), dtype=np.int8)
    crossover_signal(
        np.ascontiguousarray(fast_sum, dtype=np.float64),
        fast,
        np.ascontiguousarray(slow_sum, dtype=np.float64),
        slow,
        signal,
    )
    return signal
