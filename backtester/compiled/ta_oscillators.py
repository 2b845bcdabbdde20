"""Oscillator and window loops for `backtester.indicators`, with TA-Lib's arithmetic (see
`ta_averages`: same seeds, same order of operations; `out` arrives filled with NaN; a value at row t
reads rows <= t only)."""

from __future__ import annotations

import numpy as np

from backtester.compiled.jit import kernel


@kernel("void(float64[::1], int64, int64, float64[::1])")
def rsi(values: np.ndarray, start: int, period: int, out: np.ndarray) -> None:
    """Wilder's relative strength index: average gain and loss seeded with the mean of the first
    `period` changes, then smoothed by (period - 1) / period (first value at start + period).
    TA-Lib multiplies by 1 / period rather than dividing: so do we, for the same last bits."""
    n = len(values)
    if start + period >= n:
        return
    inverse = 1.0 / period
    previous_value = values[start]
    gain = 0.0
    loss = 0.0
    today = start + 1
    for _ in range(period):
        value = values[today]
        today += 1
        change = value - previous_value
        previous_value = value
        if change < 0:
            loss -= change
        else:
            gain += change
    loss *= inverse
    gain *= inverse
    total = gain + loss
    out[today - 1] = 100.0 * (gain / total) if not -1e-8 < total < 1e-8 else 0.0
    while today < n:
        value = values[today]
        change = value - previous_value
        previous_value = value
        loss *= period - 1
        gain *= period - 1
        if change < 0:
            loss -= change
        else:
            gain += change
        loss *= inverse
        gain *= inverse
        total = gain + loss
        out[today] = 100.0 * (gain / total) if not -1e-8 < total < 1e-8 else 0.0
        today += 1


@kernel("void(float64[::1], int64, int64, float64[::1])")
def rolling_max(values: np.ndarray, start: int, period: int, out: np.ndarray) -> None:
    """Highest value of the last `period` rows; the window is rescanned only when its maximum
    leaves it."""
    n = len(values)
    best_at = -1
    best = 0.0
    for today in range(start + period - 1, n):
        trailing = today - period + 1
        value = values[today]
        if best_at < trailing:
            best_at = trailing
            best = values[trailing]
            for i in range(trailing + 1, today + 1):
                if values[i] > best:
                    best_at = i
                    best = values[i]
        elif value >= best:
            best_at = today
            best = value
        out[today] = best


@kernel("void(float64[::1], int64, int64, float64[::1])")
def rolling_min(values: np.ndarray, start: int, period: int, out: np.ndarray) -> None:
    """Lowest value of the last `period` rows (see `rolling_max`)."""
    n = len(values)
    best_at = -1
    best = 0.0
    for today in range(start + period - 1, n):
        trailing = today - period + 1
        value = values[today]
        if best_at < trailing:
            best_at = trailing
            best = values[trailing]
            for i in range(trailing + 1, today + 1):
                if values[i] < best:
                    best_at = i
                    best = values[i]
        elif value <= best:
            best_at = today
            best = value
        out[today] = best


@kernel("void(float64[::1], float64[::1], float64[::1], int64, float64[::1])")
def stochastic_k(
    highest: np.ndarray, lowest: np.ndarray, close: np.ndarray, start: int, out: np.ndarray
) -> None:
    """Raw %K = (close - lowest) / (highest - lowest) x 100 from window extremes, 0 where the
    window is flat (a range below 1e-8, TA-Lib's zero test)."""
    for today in range(start, len(close)):
        diff = highest[today] - lowest[today]
        out[today] = (close[today] - lowest[today]) / diff * 100.0 if diff >= 1e-8 else 0.0


@kernel("void(float64[::1], float64[::1], float64[::1], int64, float64[::1])")
def williams_r(
    highest: np.ndarray, lowest: np.ndarray, close: np.ndarray, start: int, out: np.ndarray
) -> None:
    """Williams %R = (highest - close) / (highest - lowest) x -100, 0 where the window is flat (a
    range below 1e-8)."""
    for today in range(start, len(close)):
        diff = highest[today] - lowest[today]
        out[today] = (highest[today] - close[today]) / diff * -100.0 if diff >= 1e-8 else 0.0


@kernel("void(float64[::1], int64, int64, float64[::1])")
def cci(typical: np.ndarray, start: int, period: int, out: np.ndarray) -> None:
    """Commodity channel index of the typical price: (tp - mean) / (0.015 * mean deviation).
    Sums run over a ring buffer in slot order, as TA-Lib's do."""
    n = len(typical)
    for today in range(start + period - 1, n):
        offset = today - start
        mean = 0.0
        for slot in range(period):
            mean += typical[today - (offset - slot) % period]
        mean /= period
        deviation = 0.0
        for slot in range(period):
            deviation += abs(typical[today - (offset - slot) % period] - mean)
        above = typical[today] - mean
        if above != 0.0 and deviation != 0.0:
            out[today] = above / (0.015 * (deviation / period))
        else:
            out[today] = 0.0


@kernel("void(float64[::1], float64[::1], int64, int64, float64[::1])")
def mfi(typical: np.ndarray, volume: np.ndarray, start: int, period: int, out: np.ndarray) -> None:
    """Money flow index: the share of the last `period` money flows (typical price x volume) on
    rising typical prices, 0 while the flows sum below 1 (first value at start + period)."""
    n = len(typical)
    if start + period >= n:
        return
    positive = np.zeros(period)
    negative = np.zeros(period)
    slot = 0
    previous = typical[start]
    up = 0.0
    down = 0.0
    today = start + 1
    while today < n:
        if today > start + period:
            up -= positive[slot]
            down -= negative[slot]
        value = typical[today]
        change = value - previous
        previous = value
        flow = value * volume[today]
        if change < 0:
            negative[slot] = flow
            down += flow
            positive[slot] = 0.0
        elif change > 0:
            positive[slot] = flow
            up += flow
            negative[slot] = 0.0
        else:
            positive[slot] = 0.0
            negative[slot] = 0.0
        if today >= start + period:
            total = up + down
            out[today] = 0.0 if total < 1.0 else 100.0 * (up / total)
        slot = slot + 1 if slot + 1 < period else 0
        today += 1


@kernel("void(float64[::1], float64[::1], int64, float64[::1])")
def obv(close: np.ndarray, volume: np.ndarray, start: int, out: np.ndarray) -> None:
    """On-balance volume, starting from the first bar's volume."""
    n = len(close)
    if start >= n:
        return
    total = volume[start]
    previous = close[start]
    for i in range(start, n):
        value = close[i]
        if value > previous:
            total += volume[i]
        elif value < previous:
            total -= volume[i]
        out[i] = total
        previous = value
