"""Range, deviation and band loops for `backtester.indicators`, with TA-Lib's arithmetic where
TA-Lib has the indicator (see `ta_averages`: `out` arrives filled with NaN; a value at row t reads
rows <= t only)."""

from __future__ import annotations

import math

import numpy as np

from backtester.compiled.jit import kernel


@kernel("void(float64[::1], float64[::1], float64[::1], int64, float64[::1])")
def true_range(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, start: int, out: np.ndarray
) -> None:
    """max(high - low, |high - previous close|, |low - previous close|) from row start + 1."""
    for i in range(start + 1, len(close)):
        previous = close[i - 1]
        greatest = high[i] - low[i]
        above = abs(previous - high[i])
        greatest = max(greatest, above)
        below = abs(previous - low[i])
        greatest = max(greatest, below)
        out[i] = greatest


@kernel("void(float64[::1], int64, int64, float64[::1])")
def wilder_average(ranges: np.ndarray, start: int, period: int, out: np.ndarray) -> None:
    """Wilder's smoothing of `ranges` (the ATR of true ranges): seeded with the mean of the first
    `period` values at start + period - 1, then (previous * (period - 1) + value) / period."""
    n = len(ranges)
    if start + period > n:
        return
    total = 0.0
    for i in range(start, start + period):
        total += ranges[i]
    previous = total / period
    out[start + period - 1] = previous
    for i in range(start + period, n):
        previous *= period - 1
        previous += ranges[i]
        previous /= period
        out[i] = previous


@kernel("void(float64[::1], int64, int64, float64[::1], float64[::1])")
def rolling_moments(
    values: np.ndarray, start: int, period: int, mean: np.ndarray, variance: np.ndarray
) -> None:
    """Mean and population variance of the last `period` values, each window summed afresh in two
    passes (no running sum of squares, whose cancellation loses digits on large prices)."""
    n = len(values)
    for today in range(start + period - 1, n):
        total = 0.0
        for i in range(today - period + 1, today + 1):
            total += values[i]
        average = total / period
        squares = 0.0
        for i in range(today - period + 1, today + 1):
            deviation = values[i] - average
            squares += deviation * deviation
        mean[today] = average
        variance[today] = squares / period


@kernel("void(float64[::1], int64, float64, float64[::1])")
def deviation_from(variance: np.ndarray, start: int, factor: float, out: np.ndarray) -> None:
    """sqrt(variance) * factor, 0 where the variance is below 1e-8 (TA-Lib's zero test)."""
    for i in range(start, len(variance)):
        value = variance[i]
        out[i] = math.sqrt(value) * factor if not value < 1e-8 else 0.0


@kernel(
    "void(float64[::1], float64[::1], float64[::1], float64[::1], int64, float64, float64[::1], float64[::1])"
)
def supertrend(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    atr: np.ndarray,
    start: int,
    multiplier: float,
    line: np.ndarray,
    direction: np.ndarray,
) -> None:
    """SuperTrend from row `start` (the first ATR), as TradingView defines it: bands at the bar
    midpoint +- multiplier x ATR that only tighten while the previous close stays inside them; the
    trend turns up when a close crosses above the previous upper band, down when it crosses below
    the previous lower band. `line` is the active band, `direction` +1 (up: the lower band) or -1;
    the first bar counts as up."""
    n = len(close)
    if start >= n:
        return
    upper = 0.0
    lower = 0.0
    trend = 1.0
    for i in range(start, n):
        middle = (high[i] + low[i]) / 2.0
        basic_upper = middle + multiplier * atr[i]
        basic_lower = middle - multiplier * atr[i]
        if i == start:
            upper = basic_upper
            lower = basic_lower
        else:
            previous_close = close[i - 1]
            previous_upper = upper
            previous_lower = lower
            upper = (
                min(basic_upper, previous_upper) if previous_close < previous_upper else basic_upper
            )
            lower = (
                max(basic_lower, previous_lower) if previous_close > previous_lower else basic_lower
            )
            if trend < 0 and close[i] > previous_upper:
                trend = 1.0
            elif trend > 0 and close[i] < previous_lower:
                trend = -1.0
        direction[i] = trend
        line[i] = lower if trend > 0 else upper


@kernel("void(float64[::1], float64[::1], int64[::1], float64[::1])")
def session_vwap(
    price_volume: np.ndarray, volume: np.ndarray, session: np.ndarray, out: np.ndarray
) -> None:
    """Cumulative sum(price x volume) / sum(volume) since the start of each session (a change of
    `session`); NaN while the session has traded no volume."""
    total = 0.0
    traded = 0.0
    current = session[0] if len(session) else 0
    for i in range(len(volume)):
        if session[i] != current:
            current = session[i]
            total = 0.0
            traded = 0.0
        total += price_volume[i]
        traded += volume[i]
        out[i] = total / traded if traded > 0.0 else np.nan
