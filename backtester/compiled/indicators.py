"""Indicator loops for `strategy.library.indicators`, one pass each, with the arithmetic of the numpy
expressions they replace (same products, same integer sums, same comparisons)."""

from __future__ import annotations

import numpy as np

from backtester.compiled.jit import kernel

# Prices `grid_decimals` checks at a time: a failing block ends the check of its decimals.
_GRID_BLOCK = 1024


@kernel("int64(float64[::1], int64)")
def grid_decimals(prices: np.ndarray, max_decimals: int) -> int:
    """The fewest decimals that put every price on an integer grid (within 1e-6), or -1; -1 too
    where the largest price so scaled is 2**50 or more (checked price by price: rounding a product
    is monotone in |p|, so no scaled price reaches 2**50 exactly when the largest does not, and no
    decimals below the fewest on the grid pass, so where they are too fine, every one is)."""
    n = len(prices)
    scale = 1
    for decimals in range(max_decimals + 1):
        # A block at a time, each price's test without a branch (a loop the compiler vectorizes);
        # a NaN or an infinity fails both.
        start = 0
        while start < n:
            block = prices[start : start + _GRID_BLOCK]
            off = 0
            for i in range(len(block)):
                scaled = block[i] * scale
                off += not ((abs(scaled - np.rint(scaled)) < 1e-6) & (abs(scaled) < 2.0**50))
            if off:
                break
            start += len(block)
        if start >= n:
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
    # Both windows are full from here on (no NaN). The ticks are converted a block at a time
    # (kept as the integers they are, in floats), behind the last `width` bars' (a price's ticks
    # are the same integer whenever converted); the loops index the block without a negative
    # offset, which Python indexing would make a check per access.
    #
    # Where every tick a block's sums take is below `small` in size, `diff` and each of its terms
    # are integers below 2**50 in size: the float products and differences are exact. Its
    # change from bar to bar, slow * (entering - leaving fast) - fast * (entering - leaving slow),
    # is then computed for the whole block at once, and `diff` is their running sum in integers
    # (one addition a bar on the loop-carried path), compared for the crossings in a third loop:
    # three loops the compiler vectorizes or keeps short, with the same `diff` at every bar. A
    # block with a larger tick, or after one within `width` bars, takes the bar-by-bar sums.
    small = 2.0**49 / (fast_f * slow_f + fast_f + slow_f)
    ticks = np.empty(width + _BLOCK)
    last_large = -1  # the last bar whose tick is not below `small` (or that of its block's end)
    for j in range(min(n, width)):
        ticks[j] = np.rint(prices[j] * scale)
        if not abs(ticks[j]) < small:
            last_large = j
    steps = np.empty(_BLOCK)
    sums = np.empty(_BLOCK, np.int64)
    start = width
    while start < n:
        block = prices[start : start + _BLOCK]
        size = len(block)
        entering = ticks[width : width + size]
        large = 0
        for j in range(len(entering)):
            tick = np.rint(block[j] * scale)
            entering[j] = tick
            large += not abs(tick) < small
        if large:
            last_large = start + size - 1
        leaving_fast = ticks[width - fast : width - fast + size]
        leaving_slow = ticks[width - slow : width - slow + size]
        out = signal[start : start + size]
        if last_large < start - width:
            step = steps[:size]
            for j in range(len(step)):
                tick = entering[j]
                step[j] = slow_f * (tick - leaving_fast[j]) - fast_f * (tick - leaving_slow[j])
            summed = sums[:size]
            running = int(previous)
            for j in range(len(summed)):
                running += int(step[j])
                summed[j] = running
            before = int(previous)
            for j in range(len(summed)):
                now = summed[j]
                # Written for every bar, without branches: 0 where neither crosses.
                out[j] = np.int8((now > 0) & (before <= 0)) - np.int8((now < 0) & (before >= 0))
                before = now
            previous = float(before)
        else:
            fast_total = 0
            for j in range(width - fast, width):
                fast_total += int(ticks[j])
            slow_total = 0
            for j in range(width - slow, width):
                slow_total += int(ticks[j])
            for j in range(size):
                tick_now = int(entering[j])
                fast_total += tick_now - int(leaving_fast[j])
                slow_total += tick_now - int(leaving_slow[j])
                diff = float(fast_total) * slow_f - float(slow_total) * fast_f
                out[j] = np.int8((diff > 0) & (previous <= 0)) - np.int8(
                    (diff < 0) & (previous >= 0)
                )
                previous = diff
        for j in range(width):
            ticks[j] = ticks[size + j]
        start += size
