"""Price channels: Donchian (highest high / lowest low) and Keltner (EMA +- ATR multiples)."""

from __future__ import annotations

from backtester.compiled import ta_oscillators
from backtester.indicators._inputs import Column, as_columns, empty_like, first_valid, period
from backtester.indicators.averages import ema
from backtester.indicators.volatility import Bands, atr


def donchian(high: Column, low: Column, timeperiod: int = 20) -> Bands:
    """Donchian channel: the highest high and lowest low of the last `timeperiod` bars, the
    current bar included (TA-Lib's MAX and MIN), and their midpoint. A breakout rule compares a
    close with the channel of the bars before it: shift by one row."""
    h, low_ = as_columns(high=high, low=low)
    n = period("timeperiod", timeperiod, minimum=1)
    start = first_valid(h, low_)
    upper, lower = empty_like(h), empty_like(low_)
    ta_oscillators.rolling_max(h, start, n, upper)
    ta_oscillators.rolling_min(low_, start, n, lower)
    return Bands(upper, (upper + lower) / 2.0, lower)


def keltner(
    high: Column,
    low: Column,
    close: Column,
    timeperiod: int = 20,
    atr_period: int = 10,
    multiplier: float = 2.0,
) -> Bands:
    """Keltner channel: EMA of the close over `timeperiod`, plus and minus `multiplier` x ATR over
    `atr_period` (NaN until both have warmed up)."""
    h, low_, c = as_columns(high=high, low=low, close=close)
    middle = ema(c, timeperiod)
    width = atr(h, low_, c, atr_period) * multiplier
    return Bands(middle + width, middle, middle - width)
