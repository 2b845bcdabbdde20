"""Trend strength and direction: ADX, PLUS_DI, MINUS_DI (equal to TA-Lib's), SuperTrend and
Ichimoku (not in TA-Lib; Ichimoku's lines are TA-Lib's MIDPRICE over their windows)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from backtester.compiled import ta_oscillators, ta_trend, ta_volatility
from backtester.indicators._inputs import (
    Column,
    as_columns,
    empty_like,
    first_valid,
    period,
)
from backtester.indicators.volatility import atr


class SuperTrend(NamedTuple):
    line: np.ndarray
    direction: np.ndarray  # +1 up (the line is the lower band), -1 down; NaN in the warm-up


class Ichimoku(NamedTuple):
    tenkan: np.ndarray
    kijun: np.ndarray
    senkou_a: np.ndarray
    senkou_b: np.ndarray


def adx(high: Column, low: Column, close: Column, timeperiod: int = 14) -> np.ndarray:
    """Average directional index, 0..100 (first value at row 2 x timeperiod - 1)."""
    h, low_, c = as_columns(high=high, low=low, close=close)
    out = empty_like(c)
    ta_trend.adx(h, low_, c, first_valid(h, low_, c), period("timeperiod", timeperiod), out)
    return out


def plus_di(high: Column, low: Column, close: Column, timeperiod: int = 14) -> np.ndarray:
    """Plus directional indicator, 0..100."""
    return _directional(high, low, close, timeperiod)[0]


def minus_di(high: Column, low: Column, close: Column, timeperiod: int = 14) -> np.ndarray:
    """Minus directional indicator, 0..100."""
    return _directional(high, low, close, timeperiod)[1]


def supertrend(
    high: Column, low: Column, close: Column, timeperiod: int = 10, multiplier: float = 3.0
) -> SuperTrend:
    """SuperTrend over Wilder's ATR of `timeperiod`: the trailing band that flips side when a
    close crosses it (TradingView's definition)."""
    h, low_, c = as_columns(high=high, low=low, close=close)
    average = atr(h, low_, c, timeperiod)
    line, direction = empty_like(c), empty_like(c)
    ta_volatility.supertrend(
        h, low_, c, average, first_valid(average), float(multiplier), line, direction
    )
    return SuperTrend(line, direction)


def ichimoku(
    high: Column,
    low: Column,
    tenkan_period: int = 9,
    kijun_period: int = 26,
    senkou_period: int = 52,
    displacement: int = 26,
) -> Ichimoku:
    """Ichimoku cloud lines, each aligned to the bar where it is known.

    tenkan and kijun: midpoints of the highest high and lowest low over their windows.
    senkou_a ((tenkan + kijun) / 2) and senkou_b (the midpoint over `senkou_period`) are charted
    `displacement` bars ahead, so here row t holds the value computed at row t - displacement: the
    cloud a chart shows over bar t. The lagging span (the close charted `displacement` bars back)
    is not returned: aligned to its chart position it would put a later close on an earlier bar;
    its reading at bar t is just close[t] against close[t - displacement]."""
    h, low_ = as_columns(high=high, low=low)
    shift = period("displacement", displacement, minimum=0)
    tenkan = _midpoint(h, low_, period("tenkan_period", tenkan_period, 1))
    kijun = _midpoint(h, low_, period("kijun_period", kijun_period, 1))
    span_b = _midpoint(h, low_, period("senkou_period", senkou_period, 1))
    return Ichimoku(tenkan, kijun, _later(tenkan + kijun, shift) / 2.0, _later(span_b, shift))


def _directional(
    high: Column, low: Column, close: Column, timeperiod: int
) -> tuple[np.ndarray, np.ndarray]:
    h, low_, c = as_columns(high=high, low=low, close=close)
    plus, minus = empty_like(c), empty_like(c)
    n = period("timeperiod", timeperiod, minimum=1)
    ta_trend.directional_indicators(h, low_, c, first_valid(h, low_, c), n, plus, minus)
    return plus, minus


def _midpoint(high: np.ndarray, low: np.ndarray, n: int) -> np.ndarray:
    start = first_valid(high, low)
    highest, lowest = empty_like(high), empty_like(low)
    ta_oscillators.rolling_max(high, start, n, highest)
    ta_oscillators.rolling_min(low, start, n, lowest)
    middle: np.ndarray = (highest + lowest) / 2.0
    return middle


def _later(values: np.ndarray, shift: int) -> np.ndarray:
    out = empty_like(values)
    if shift < len(values):
        out[shift:] = values[: len(values) - shift]
    return out
