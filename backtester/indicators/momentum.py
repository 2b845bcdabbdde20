"""Oscillators and momentum: RSI, MACD, STOCH, STOCHRSI, CCI, MFI, ROC, MOM, WILLR.

Each equals TA-Lib's function of the same name in upper case, warm-up included (rows TA-Lib does not
output are NaN); leading NaN in the inputs are skipped.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from backtester.compiled import ta_oscillators
from backtester.indicators._inputs import (
    Column,
    as_column,
    as_columns,
    empty_like,
    first_valid,
    period,
)
from backtester.indicators.averages import MAType, _ema, ma


class MACD(NamedTuple):
    macd: np.ndarray
    signal: np.ndarray
    hist: np.ndarray


class Stochastic(NamedTuple):
    slowk: np.ndarray
    slowd: np.ndarray


class FastStochastic(NamedTuple):
    fastk: np.ndarray
    fastd: np.ndarray


def rsi(values: Column, timeperiod: int = 14) -> np.ndarray:
    """Wilder's relative strength index, 0..100."""
    x = as_column(values)
    out = empty_like(x)
    ta_oscillators.rsi(x, first_valid(x), period("timeperiod", timeperiod), out)
    return out


def macd(values: Column, fastperiod: int = 12, slowperiod: int = 26, signalperiod: int = 9) -> MACD:
    """MACD line (fast EMA - slow EMA), its signal line (EMA of the line) and the histogram.

    As in TA-Lib, the fast EMA is seeded on the `fastperiod` values that end where the slow EMA's
    seed ends, and the line is NaN until the signal line starts."""
    x = as_column(values)
    fast = period("fastperiod", fastperiod)
    slow = period("slowperiod", slowperiod)
    signal_n = period("signalperiod", signalperiod, minimum=1)
    if fast >= slow:
        raise ValueError(f"fastperiod must be below slowperiod, got {fast} and {slow}")
    start = first_valid(x)
    line = _ema(x, start + slow - fast, fast) - _ema(x, start, slow)
    signal = _ema(line, start + slow - 1, signal_n)
    line[: min(len(x), start + slow + signal_n - 2)] = np.nan
    return MACD(line, signal, line - signal)


def stoch(
    high: Column,
    low: Column,
    close: Column,
    fastk_period: int = 5,
    slowk_period: int = 3,
    slowk_matype: MAType = "sma",
    slowd_period: int = 3,
    slowd_matype: MAType = "sma",
) -> Stochastic:
    """Slow stochastic: %K of `fastk_period` smoothed over `slowk_period` (slowk), and slowk
    smoothed over `slowd_period` (slowd); slowk is NaN until slowd starts."""
    h, low_, c = as_columns(high=high, low=low, close=close)
    raw = _fast_k(h, low_, c, first_valid(h, low_, c), period("fastk_period", fastk_period, 1))
    slowk = ma(raw, period("slowk_period", slowk_period, 1), slowk_matype)
    slowd = ma(slowk, period("slowd_period", slowd_period, 1), slowd_matype)
    slowk[np.isnan(slowd)] = np.nan
    return Stochastic(slowk, slowd)


def stochrsi(
    values: Column,
    timeperiod: int = 14,
    fastk_period: int = 5,
    fastd_period: int = 3,
    fastd_matype: MAType = "sma",
) -> FastStochastic:
    """Fast stochastic of the RSI: fastk = %K of the RSI over `fastk_period`, fastd its average;
    fastk is NaN until fastd starts."""
    r = rsi(values, timeperiod)
    fastk = _fast_k(r, r, r, first_valid(r), period("fastk_period", fastk_period, 1))
    fastd = ma(fastk, period("fastd_period", fastd_period, 1), fastd_matype)
    fastk[np.isnan(fastd)] = np.nan
    return FastStochastic(fastk, fastd)


def cci(high: Column, low: Column, close: Column, timeperiod: int = 14) -> np.ndarray:
    """Commodity channel index of the typical price (high + low + close) / 3."""
    h, low_, c = as_columns(high=high, low=low, close=close)
    typical = (h + low_ + c) / 3.0
    out = empty_like(typical)
    ta_oscillators.cci(typical, first_valid(typical), period("timeperiod", timeperiod), out)
    return out


def mfi(
    high: Column, low: Column, close: Column, volume: Column, timeperiod: int = 14
) -> np.ndarray:
    """Money flow index, 0..100: a volume-weighted RSI of the typical price."""
    h, low_, c, v = as_columns(high=high, low=low, close=close, volume=volume)
    typical = (h + low_ + c) / 3.0
    out = empty_like(typical)
    start = first_valid(typical, v)
    ta_oscillators.mfi(typical, v, start, period("timeperiod", timeperiod), out)
    return out


def roc(values: Column, timeperiod: int = 10) -> np.ndarray:
    """Rate of change in percent: (value / value `timeperiod` rows ago - 1) x 100 (0 where the
    older value is 0)."""
    x = as_column(values)
    n = period("timeperiod", timeperiod, minimum=1)
    out = empty_like(x)
    start = first_valid(x)
    if start + n >= len(x):
        return out
    older = x[start : len(x) - n]
    newer = x[start + n :]
    with np.errstate(divide="ignore", invalid="ignore"):
        out[start + n :] = np.where(older != 0.0, (newer / older - 1.0) * 100.0, 0.0)
    return out


def mom(values: Column, timeperiod: int = 10) -> np.ndarray:
    """Momentum: value - value `timeperiod` rows ago."""
    x = as_column(values)
    n = period("timeperiod", timeperiod, minimum=1)
    out = empty_like(x)
    start = first_valid(x)
    if start + n < len(x):
        out[start + n :] = x[start + n :] - x[start : len(x) - n]
    return out


def willr(high: Column, low: Column, close: Column, timeperiod: int = 14) -> np.ndarray:
    """Williams %R, -100..0: where the close sits in the window's range, from the top."""
    h, low_, c = as_columns(high=high, low=low, close=close)
    n = period("timeperiod", timeperiod)
    start = first_valid(h, low_, c)
    highest, lowest = empty_like(h), empty_like(h)
    ta_oscillators.rolling_max(h, start, n, highest)
    ta_oscillators.rolling_min(low_, start, n, lowest)
    out = empty_like(c)
    ta_oscillators.williams_r(highest, lowest, c, start + n - 1, out)
    return out


def _fast_k(h: np.ndarray, low: np.ndarray, c: np.ndarray, start: int, n: int) -> np.ndarray:
    highest, lowest = empty_like(h), empty_like(h)
    ta_oscillators.rolling_max(h, start, n, highest)
    ta_oscillators.rolling_min(low, start, n, lowest)
    out = empty_like(c)
    ta_oscillators.stochastic_k(highest, lowest, c, start + n - 1, out)
    return out
