"""Moving averages: SMA, EMA, WMA, DEMA, TEMA, KAMA, and MA (any of them by name).

Each equals TA-Lib's function of the same name in upper case, warm-up included: the first
`timeperiod - 1` rows (more for DEMA, TEMA, KAMA) are NaN, EMA is seeded with the mean of its first
`timeperiod` values, and leading NaN in the input are skipped.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from backtester.compiled import ta_averages
from backtester.indicators._inputs import Column, as_column, empty_like, first_valid, period

MAType = Literal["sma", "ema", "wma", "dema", "tema", "kama"]


def sma(values: Column, timeperiod: int = 30) -> np.ndarray:
    """Simple moving average."""
    x = as_column(values)
    out = empty_like(x)
    ta_averages.sma(x, first_valid(x), period("timeperiod", timeperiod), out)
    return out


def ema(values: Column, timeperiod: int = 30) -> np.ndarray:
    """Exponential moving average, k = 2 / (timeperiod + 1), seeded with the SMA of the first
    `timeperiod` values."""
    x = as_column(values)
    return _ema(x, first_valid(x), period("timeperiod", timeperiod))


def wma(values: Column, timeperiod: int = 30) -> np.ndarray:
    """Linearly weighted moving average (weights 1..timeperiod, the newest heaviest)."""
    x = as_column(values)
    out = empty_like(x)
    ta_averages.wma(x, first_valid(x), period("timeperiod", timeperiod), out)
    return out


def dema(values: Column, timeperiod: int = 30) -> np.ndarray:
    """Double EMA: 2 x EMA - EMA(EMA)."""
    x = as_column(values)
    n = period("timeperiod", timeperiod)
    start = first_valid(x)
    first = _ema(x, start, n)
    second = _ema(first, start + n - 1, n)
    double: np.ndarray = 2.0 * first - second
    return double


def tema(values: Column, timeperiod: int = 30) -> np.ndarray:
    """Triple EMA: 3 x EMA - 3 x EMA(EMA) + EMA(EMA(EMA))."""
    x = as_column(values)
    n = period("timeperiod", timeperiod)
    start = first_valid(x)
    first = _ema(x, start, n)
    second = _ema(first, start + n - 1, n)
    third = _ema(second, start + 2 * (n - 1), n)
    return third + (3.0 * first - 3.0 * second)


def kama(values: Column, timeperiod: int = 30) -> np.ndarray:
    """Kaufman adaptive moving average (efficiency ratio over `timeperiod`, fast 2, slow 30)."""
    x = as_column(values)
    out = empty_like(x)
    ta_averages.kama(x, first_valid(x), period("timeperiod", timeperiod), out)
    return out


_AVERAGES = {"sma": sma, "ema": ema, "wma": wma, "dema": dema, "tema": tema, "kama": kama}


def ma(values: Column, timeperiod: int = 30, matype: MAType = "sma") -> np.ndarray:
    """The moving average named by `matype`; timeperiod 1 returns the input, as TA-Lib's MA does."""
    average = _AVERAGES.get(matype)
    if average is None:
        raise ValueError(f"unknown matype {matype!r}; known: {', '.join(_AVERAGES)}")
    if period("timeperiod", timeperiod, minimum=1) == 1:
        return as_column(values).copy()
    return average(values, timeperiod)


def _ema(x: np.ndarray, start: int, n: int) -> np.ndarray:
    out = empty_like(x)
    ta_averages.ema(x, start, n, 2.0 / (n + 1), out)
    return out
