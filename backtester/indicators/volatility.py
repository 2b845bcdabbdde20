"""Ranges and deviations: TRANGE, ATR, NATR, STDDEV, BBANDS (equal to TA-Lib's), and a rolling
z-score (not in TA-Lib)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from backtester.compiled import ta_volatility
from backtester.indicators._inputs import (
    Column,
    as_column,
    as_columns,
    empty_like,
    first_valid,
    period,
)
from backtester.indicators.averages import MAType, ma


class Bands(NamedTuple):
    upper: np.ndarray
    middle: np.ndarray
    lower: np.ndarray


def trange(high: Column, low: Column, close: Column) -> np.ndarray:
    """True range: the bar's range widened to the previous close (NaN on the first bar)."""
    h, low_, c = as_columns(high=high, low=low, close=close)
    out = empty_like(c)
    ta_volatility.true_range(h, low_, c, first_valid(h, low_, c), out)
    return out


def atr(high: Column, low: Column, close: Column, timeperiod: int = 14) -> np.ndarray:
    """Average true range, Wilder-smoothed, seeded with the mean of the first `timeperiod` true
    ranges (first value at row `timeperiod`)."""
    h, low_, c = as_columns(high=high, low=low, close=close)
    n = period("timeperiod", timeperiod, minimum=1)
    start = first_valid(h, low_, c)
    ranges = empty_like(c)
    ta_volatility.true_range(h, low_, c, start, ranges)
    out = empty_like(c)
    ta_volatility.wilder_average(ranges, start + 1, n, out)
    return out


def natr(high: Column, low: Column, close: Column, timeperiod: int = 14) -> np.ndarray:
    """ATR as a percentage of the close (0 where the close is 0)."""
    c = as_column(close, "close")
    average = atr(high, low, c, timeperiod)
    with np.errstate(divide="ignore", invalid="ignore"):
        percent = np.where((c > -1e-8) & (c < 1e-8), 0.0, (average / c) * 100.0)
    percent[np.isnan(average)] = np.nan
    return percent


def stddev(values: Column, timeperiod: int = 5, nbdev: float = 1.0) -> np.ndarray:
    """Population standard deviation of the last `timeperiod` values, times `nbdev` (0 on a window
    whose variance is below 1e-8, as in TA-Lib)."""
    x = as_column(values)
    n = period("timeperiod", timeperiod)
    start = first_valid(x)
    _, variance = _moments(x, start, n)
    out = empty_like(x)
    ta_volatility.deviation_from(variance, start + n - 1, float(nbdev), out)
    return out


def bbands(
    values: Column,
    timeperiod: int = 20,
    nbdevup: float = 2.0,
    nbdevdn: float = 2.0,
    matype: MAType = "sma",
) -> Bands:
    """Bollinger bands: the moving average, plus and minus `nbdevup` / `nbdevdn` standard
    deviations."""
    x = as_column(values)
    middle = ma(x, period("timeperiod", timeperiod), matype)
    deviation = stddev(x, timeperiod)
    return Bands(middle + deviation * nbdevup, middle, middle - deviation * nbdevdn)


def zscore(values: Column, timeperiod: int = 20) -> np.ndarray:
    """Rolling z-score: (value - mean) / population standard deviation of the last `timeperiod`
    values; 0 on a flat window."""
    x = as_column(values)
    mean, variance = _moments(x, first_valid(x), period("timeperiod", timeperiod))
    spread = np.sqrt(variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(spread > 0.0, (x - mean) / spread, 0.0)
    score[np.isnan(variance)] = np.nan
    return score


def _moments(x: np.ndarray, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    mean, variance = empty_like(x), empty_like(x)
    ta_volatility.rolling_moments(x, start, n, mean, variance)
    return mean, variance
