"""Indicator loops for `strategy.library.indicators`, one pass each, with the arithmetic of the numpy
expressions they replace (same products, same integer sums, same comparisons)."""

from __future__ import annotations

import numpy as np

from backtester.compiled.jit import kernel


@kernel("int64(float64[::1], int64)")
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


@kernel("void(float64[::1], int64, int64, float64[::1])")
def window_sums_in_ticks(prices: np.ndarray, window: int, scale: int, out: np.ndarray) -> None:
    """Sums of `window` prices in integer ticks of 1/scale into `out` (NaN before the window
    fills). A price's ticks are computed again when it leaves the window: the same integer."""
    total = 0
    for i in range(len(prices)):
        total += int(np.rint(prices[i] * scale))
        if i >= window:
            total -= int(np.rint(prices[i - window] * scale))
        out[i] = float(total) if i >= window - 1 else np.nan


@kernel("void(float64[::1], int64, float64[::1], int64, int8[::1])")
def crossover_signal(
    fast_sum: np.ndarray, fast: int, slow_sum: np.ndarray, slow: int, signal: np.ndarray
) -> None:
    """Into a zeroed `signal`: +1 where fast_sum/fast crosses above slow_sum/slow, -1 where it
    crosses below."""
    n = len(fast_sum)
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


# Bars whose ticks `sma_cross_in_ticks` converts at a time, ahead of summing them.
_BLOCK = 2048


@kernel("void(float64[::1], int64, int64, int64, int8[::1])")
def sma_cross_in_ticks(
    prices: np.ndarray, fast: int, slow: int, scale: int, signal: np.ndarray
) -> None:
    """`crossover_signal` of the `window_sums_in_ticks` of both windows (each at least 1), in one
    pass, into a zeroed `signal`."""
    n = len(prices)
    width = max(fast, slow)
    fast_total = 0
    slow_total = 0
    slow_f = float(slow)
    fast_f = float(fast)
    previous = np.nan
    for i in range(min(n, width)):
        tick = int(np.rint(prices[i] * scale))
        fast_total += tick
        slow_total += tick
        if i >= fast:
            fast_total -= int(np.rint(prices[i - fast] * scale))
        if i >= slow:
            slow_total -= int(np.rint(prices[i - slow] * scale))
        fast_sum = float(fast_total) if i >= fast - 1 else np.nan
        slow_sum = float(slow_total) if i >= slow - 1 else np.nan
        diff = fast_sum * slow_f - slow_sum * fast_f
        if i > 0:
            if diff > 0 and previous <= 0:
                signal[i] = 1
            elif diff < 0 and previous >= 0:
                signal[i] = -1
        previous = diff
    # Both windows are full from here on (no NaN). The ticks are converted a block at a time, a
    # loop the compiler vectorizes, behind the last `width` bars' (a price's ticks are the same
    # integer whenever converted); the sums then index the block without a negative offset, which
    # Python indexing would make a check per access.
    ticks = np.empty(width + _BLOCK, np.int64)
    for j in range(min(n, width)):
        ticks[j] = int(np.rint(prices[j] * scale))
    start = width
    while start < n:
        size = min(_BLOCK, n - start)
        block = prices[start : start + size]
        entering = ticks[width : width + size]
        for j in range(size):
            entering[j] = int(np.rint(block[j] * scale))
        leaving_fast = ticks[width - fast :]
        leaving_slow = ticks[width - slow :]
        out = signal[start : start + size]
        for j in range(size):
            tick = entering[j]
            fast_total += tick - leaving_fast[j]
            slow_total += tick - leaving_slow[j]
            diff = float(fast_total) * slow_f - float(slow_total) * fast_f
            # Written for every bar, without branches: 0 where neither crosses.
            out[j] = np.int8((diff > 0) & (previous <= 0)) - np.int8((diff < 0) & (previous >= 0))
            previous = diff
        for j in range(width):
            ticks[j] = ticks[size + j]
        start += size
