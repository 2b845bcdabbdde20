"""Indicator loops for `strategy.library.indicators`, one pass each, with the arithmetic of the numpy
expressions they replace (same products, same integer sums, same comparisons)."""

from __future__ import annotations

import numpy as np

from backtester.compiled.jit import kernel


@kernel
def grid_decimals(prices: np.ndarray, max_decimals: int) -> int:
    """The fewest decimals that put every price on an integer grid (within 1e-6), or -1."""
    largest = 0.0
    for p in prices:
        largest = max(largest, abs(p))
    scale = 1
    for decimals in range(max_decimals + 1):
        # max |p * scale| is |max p| * scale: rounding a product is monotone in |p|.
        if largest * scale >= 2.0**50:
            return -1
        on_grid = True
        for p in prices:
            scaled = p * scale
            if not abs(scaled - np.rint(scaled)) < 1e-6:
                on_grid = False
                break
        if on_grid:
            return decimals
        scale *= 10
    return -1


@kernel
def window_sums_in_ticks(prices: np.ndarray, window: int, scale: int) -> np.ndarray:
    """Sums of `window` prices in integer ticks of 1/scale (NaN before the window fills)."""
    n = len(prices)
    out = np.full(n, np.nan)
    total = 0
    ticks = np.empty(n, np.int64)
    for i in range(n):
        ticks[i] = np.int64(np.rint(prices[i] * scale))
        total += ticks[i]
        if i >= window:
            total -= ticks[i - window]
        if i >= window - 1:
            out[i] = float(total)
    return out


@kernel
def crossover_signal(
    fast_sum: np.ndarray, fast: int, slow_sum: np.ndarray, slow: int
) -> np.ndarray:
    """+1 where fast_sum/fast crosses above slow_sum/slow, -1 where it crosses below, else 0."""
    n = len(fast_sum)
    signal = np.zeros(n, np.int8)
    slow_f = float(slow)
    fast_f = float(fast)
    previous = np.nan
    for i in range(n):
        diff = fast_sum[i] * slow_f - slow_sum[i] * fast_f
        if i > 0:
            if diff > 0 and previous <= 0:
                signal[i] = 1
            elif diff < 0 and previous >= 0:
                signal[i] = -1
        previous = diff
    return signal


@kernel
def sma_cross_in_ticks(prices: np.ndarray, fast: int, slow: int, scale: int) -> np.ndarray:
    """`crossover_signal` of the `window_sums_in_ticks` of both windows, in one pass."""
    n = len(prices)
    ticks = np.empty(n, np.int64)
    signal = np.zeros(n, np.int8)
    fast_total = 0
    slow_total = 0
    slow_f = float(slow)
    fast_f = float(fast)
    previous = np.nan
    for i in range(n):
        tick = int(np.rint(prices[i] * scale))
        ticks[i] = tick
        fast_total += tick
        slow_total += tick
        if i >= fast:
            fast_total -= ticks[i - fast]
        if i >= slow:
            slow_total -= ticks[i - slow]
        fast_sum = float(fast_total) if i >= fast - 1 else np.nan
        slow_sum = float(slow_total) if i >= slow - 1 else np.nan
        diff = fast_sum * slow_f - slow_sum * fast_f
        if i > 0:
            if diff > 0 and previous <= 0:
                signal[i] = 1
            elif diff < 0 and previous >= 0:
                signal[i] = -1
        previous = diff
    return signal
