"""Technical indicators over numpy arrays or polars Series, returning numpy float64 arrays.

Names are TA-Lib's in lower case, with TA-Lib's parameter names and defaults; where TA-Lib has the
indicator the values equal TA-Lib's (warm-up rows included, which are NaN). Several outputs come as
a named tuple: `macd(close).signal`, `upper, middle, lower = bbands(close)`.

Every value at row t is computed from rows <= t only: cutting later rows off never changes it (a
property test checks every indicator). Compute them once in `on_start` over the whole columns and
read them at the current bar (`ctx.register_indicator` / `ctx.indicator`).

    from backtester import indicators as ta
    ta.rsi(frame["close"], timeperiod=14)
"""

from backtester.indicators.averages import MAType, dema, ema, kama, ma, sma, tema, wma
from backtester.indicators.channels import donchian, keltner
from backtester.indicators.momentum import (
    MACD,
    FastStochastic,
    Stochastic,
    cci,
    macd,
    mfi,
    mom,
    roc,
    rsi,
    stoch,
    stochrsi,
    willr,
)
from backtester.indicators.trend import (
    Ichimoku,
    SuperTrend,
    adx,
    ichimoku,
    minus_di,
    plus_di,
    supertrend,
)
from backtester.indicators.volatility import Bands, atr, bbands, natr, stddev, trange, zscore
from backtester.indicators.volume import obv, vwap

__all__ = [
    "MACD",
    "Bands",
    "FastStochastic",
    "Ichimoku",
    "MAType",
    "Stochastic",
    "SuperTrend",
    "adx",
    "atr",
    "bbands",
    "cci",
    "dema",
    "donchian",
    "ema",
    "ichimoku",
    "kama",
    "keltner",
    "ma",
    "macd",
    "mfi",
    "minus_di",
    "mom",
    "natr",
    "obv",
    "plus_di",
    "roc",
    "rsi",
    "sma",
    "stddev",
    "stoch",
    "stochrsi",
    "supertrend",
    "tema",
    "trange",
    "vwap",
    "willr",
    "wma",
    "zscore",
]
