"""Moving-average loops for `backtester.indicators`, with TA-Lib's arithmetic: the same running sums,
the same seeds and the same order of operations, so that results agree with TA-Lib to the last bits.

Every kernel reads `values[start:]` (the caller skips leading NaN) and writes into `out`, which the
caller fills with NaN first: rows before the warm-up stay NaN. A value at row t is computed by a
forward pass over rows <= t only, so cutting the input never changes the rows that remain.
"""

from __future__ import annotations

import numpy as np

from backtester.compiled.jit import kernel


@kernel("void(float64[::1], int64, int64, float64[::1])")
def sma(values: np.ndarray, start: int, period: int, out: np.ndarray) -> None:
    """Simple moving average from a running sum (first value at start + period - 1)."""
    n = len(values)
    if start + period > n:
        return
    total = 0.0
    for i in range(start, start + period - 1):
        total += values[i]
    trailing = start
    for i in range(start + period - 1, n):
        total += values[i]
        out[i] = total / period
        total -= values[trailing]
        trailing += 1


@kernel("void(float64[::1], int64, int64, float64, float64[::1])")
def ema(values: np.ndarray, start: int, period: int, k: float, out: np.ndarray) -> None:
    """Exponential moving average with factor `k`, seeded with the mean of the first `period`
    values (first value at start + period - 1)."""
    n = len(values)
    if start + period > n:
        return
    total = 0.0
    for i in range(start, start + period):
        total += values[i]
    previous = total / period
    out[start + period - 1] = previous
    for i in range(start + period, n):
        previous = (values[i] - previous) * k + previous
        out[i] = previous


@kernel("void(float64[::1], int64, int64, float64[::1])")
def wma(values: np.ndarray, start: int, period: int, out: np.ndarray) -> None:
    """Linearly weighted moving average (weights 1..period, newest heaviest), kept as a running
    weighted sum minus a running plain sum, both re-summed every 8 x period rows."""
    n = len(values)
    if start + period > n:
        return
    divider = (period * (period + 1)) >> 1
    plain = 0.0
    weighted = 0.0
    at = start
    weight = 1
    while at < start + period - 1:
        value = values[at]
        plain += value
        weighted += value * weight
        weight += 1
        at += 1
    trailing_value = 0.0
    trailing = start
    resync = 8 * period
    count = 0
    while at < n:
        value = values[at]
        plain += value
        plain -= trailing_value
        weighted += value * period
        trailing_value = values[trailing]
        trailing += 1
        count += 1
        if count == resync:
            # TA-Lib re-sums the window every 8 x period rows, which bounds the running sums' drift.
            count = 0
            plain = 0.0
            weighted = 0.0
            for i in range(period):
                value = values[at - period + 1 + i]
                plain += value
                weighted += value * (i + 1)
        out[at] = weighted / divider
        weighted -= plain
        at += 1


@kernel("void(float64[::1], int64, int64, float64[::1])")
def kama(values: np.ndarray, start: int, period: int, out: np.ndarray) -> None:
    """Kaufman's adaptive moving average (fast 2, slow 30), seeded with the previous value
    (first value at start + period)."""
    n = len(values)
    if start + period >= n:
        return
    fastest = 2.0 / (30.0 + 1.0)
    spread = 2.0 / (2.0 + 1.0) - fastest
    volatility = 0.0
    today = start
    for _ in range(period):
        step = values[today]
        today += 1
        step -= values[today]
        volatility += abs(step)
    previous = values[today - 1]
    trailing = start
    trailing_value = 0.0
    first = True
    while today < n:
        value = values[today]
        leaving = values[trailing]
        trailing += 1
        change = value - leaving
        if not first:
            volatility -= abs(trailing_value - leaving)
            volatility += abs(value - values[today - 1])
        first = False
        trailing_value = leaving
        if volatility <= change or (-1e-8 < volatility < 1e-8):
            efficiency = 1.0
        else:
            efficiency = abs(change / volatility)
        smoothing = efficiency * spread + fastest
        smoothing *= smoothing
        previous = (values[today] - previous) * smoothing + previous
        out[today] = previous
        today += 1
