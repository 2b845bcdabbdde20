"""Wilder's directional movement loops for `backtester.indicators`, with TA-Lib's arithmetic (see
`ta_averages`: `out` arrives filled with NaN; a value at row t reads rows <= t only).

Directional movement of a bar: up = high - previous high, down = previous low - low; +DM is `up`
when up > down and up > 0, -DM is `down` when down > up and down > 0, else 0. Sums of period - 1
one-bar values seed Wilder's smoothing, x - x / period + today's value.
"""

from __future__ import annotations

import math

import numpy as np

from backtester.compiled.jit import kernel


@kernel("void(float64[::1], float64[::1], float64[::1], int64, int64, float64[::1], float64[::1])")
def directional_indicators(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    start: int,
    period: int,
    plus: np.ndarray,
    minus: np.ndarray,
) -> None:
    """+DI and -DI: 100 x smoothed +DM (-DM) / smoothed true range (first value at start +
    period; 0 where the smoothed range is zero)."""
    n = len(close)
    if start + period >= n:
        return
    plus_dm = 0.0
    minus_dm = 0.0
    ranges = 0.0
    previous_high = high[start]
    previous_low = low[start]
    previous_close = close[start]
    for today in range(start + 1, n):
        up = high[today] - previous_high
        previous_high = high[today]
        down = previous_low - low[today]
        previous_low = low[today]
        bar_range = previous_high - previous_low
        gap = abs(previous_high - previous_close)
        bar_range = max(bar_range, gap)
        gap = abs(previous_low - previous_close)
        bar_range = max(bar_range, gap)
        previous_close = close[today]
        if today < start + period:
            if up > 0 and up > down:
                plus_dm += up
            if down > 0 and up < down:
                minus_dm += down
            ranges += bar_range
            continue
        if up > 0 and up > down:
            plus_dm = plus_dm - plus_dm / period + up
        else:
            plus_dm = plus_dm - plus_dm / period
        if down > 0 and up < down:
            minus_dm = minus_dm - minus_dm / period + down
        else:
            minus_dm = minus_dm - minus_dm / period
        ranges = ranges - ranges / period + bar_range
        if -1e-8 < ranges < 1e-8:
            plus[today] = 0.0
            minus[today] = 0.0
        else:
            plus[today] = 100.0 * (plus_dm / ranges)
            minus[today] = 100.0 * (minus_dm / ranges)


@kernel("void(float64[::1], float64[::1], float64[::1], int64, int64, float64[::1])")
def adx(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, start: int, period: int, out: np.ndarray
) -> None:
    """Average directional index: the mean of the first `period` DX values, then Wilder-smoothed
    (first value at start + 2 * period - 1). A bar whose DX is undefined keeps the previous ADX."""
    n = len(close)
    if start + 2 * period - 1 >= n:
        return
    plus_dm = 0.0
    minus_dm = 0.0
    ranges = 0.0
    previous_high = high[start]
    previous_low = low[start]
    previous_close = close[start]
    dx_sum = 0.0
    average = 0.0
    for today in range(start + 1, n):
        up = high[today] - previous_high
        previous_high = high[today]
        down = previous_low - low[today]
        previous_low = low[today]
        bar_range = previous_high - previous_low
        gap = abs(previous_high - previous_close)
        bar_range = max(bar_range, gap)
        gap = abs(previous_low - previous_close)
        bar_range = max(bar_range, gap)
        previous_close = close[today]
        if today < start + period:
            if down > 0 and up < down:
                minus_dm += down
            elif up > 0 and up > down:
                plus_dm += up
            ranges += bar_range
            continue
        minus_dm -= minus_dm / period
        plus_dm -= plus_dm / period
        if down > 0 and up < down:
            minus_dm += down
        elif up > 0 and up > down:
            plus_dm += up
        ranges = ranges - ranges / period + bar_range
        dx = np.nan
        if not -1e-8 < ranges < 1e-8:
            minus_di = 100.0 * (minus_dm / ranges)
            plus_di = 100.0 * (plus_dm / ranges)
            total = minus_di + plus_di
            if not -1e-8 < total < 1e-8:
                dx = 100.0 * (abs(minus_di - plus_di) / total)
        if today < start + 2 * period:
            if not math.isnan(dx):
                dx_sum += dx
            if today == start + 2 * period - 1:
                average = dx_sum / period
                out[today] = average
            continue
        if not math.isnan(dx):
            average = (average * (period - 1) + dx) / period
        out[today] = average
