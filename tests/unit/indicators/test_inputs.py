"""Bad indicator input is refused with a message that names the parameter or column."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtester import indicators as ta
from backtester.compiled import ta_averages, ta_oscillators, ta_trend, ta_volatility
from backtester.compiled.jit import Kernel


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ta.sma(np.ones(5), 1), "timeperiod must be in"),
        (lambda: ta.sma(np.ones(5), 2.5), "timeperiod must be an integer"),
        (lambda: ta.rsi(np.ones((2, 2))), "values must be one-dimensional"),
        (lambda: ta.atr(np.ones(5), np.ones(4), np.ones(5)), "high=5, low=4, close=5"),
        (lambda: ta.macd(np.ones(50), 26, 12), "fastperiod must be below slowperiod"),
        (lambda: ta.ma(np.ones(5), 3, "hull"), "unknown matype 'hull'"),
        (lambda: ta.vwap(*[np.ones(3)] * 4, np.arange(2)), "timestamps has 2 rows"),
    ],
)
def test_bad_input_is_refused_by_name(call: object, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        call()  # type: ignore[operator]


def test_series_shorter_than_the_warm_up_is_all_nan() -> None:
    assert np.isnan(ta.ema(np.ones(3), 5)).all()
    assert np.isnan(ta.adx(np.ones(3), np.ones(3), np.ones(3))).all()
    assert np.isnan(ta.roc(np.ones(3), 5)).all()
    assert ta.rsi(np.array([])).shape == (0,)


def test_polars_nulls_count_as_leading_warm_up() -> None:
    series = pl.Series([None, None, 1.0, 2.0, 3.0, 4.0])
    result = ta.sma(series, 2)
    np.testing.assert_array_equal(result, [np.nan, np.nan, np.nan, 1.5, 2.5, 3.5])


def test_vwap_weekly_sessions_start_on_monday() -> None:
    day = 86_400 * 10**9
    monday = 4 * day  # 1970-01-05
    ts = np.array([monday - day, monday, monday + day], dtype=np.int64)
    price = np.array([1.0, 2.0, 4.0])
    vwap = ta.vwap(price, price, price, np.ones(3), ts, anchor="1w")
    np.testing.assert_array_equal(vwap, [1.0, 2.0, 3.0])


KERNELS = [
    k
    for module in (ta_averages, ta_oscillators, ta_trend, ta_volatility)
    for k in vars(module).values()
    if isinstance(k, Kernel)
]


def test_indicators_give_the_same_bits_without_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.Generator(np.random.PCG64(5))
    close = np.round(100 + np.cumsum(rng.normal(0, 1, 300)), 2)
    high, low = close + 0.5, close - 0.5
    volume = rng.random(300)
    ts = np.arange(300, dtype=np.int64) * 60 * 10**9
    calls = [
        lambda: ta.wma(close, 5),
        lambda: ta.kama(close, 10),
        lambda: ta.rsi(close),
        lambda: ta.stoch(high, low, close),
        lambda: ta.cci(high, low, close),
        lambda: ta.mfi(high, low, close, volume),
        lambda: ta.obv(close, volume),
        lambda: ta.adx(high, low, close),
        lambda: ta.plus_di(high, low, close),
        lambda: ta.bbands(close),
        lambda: ta.zscore(close),
        lambda: ta.supertrend(high, low, close),
        lambda: ta.vwap(high, low, close, volume, ts),
    ]
    compiled = [call() for call in calls]
    for kernel in KERNELS:
        monkeypatch.setattr(kernel, "_compiled", kernel.py_func)
    for call, expected in zip(calls, compiled, strict=True):
        np.testing.assert_array_equal(np.asarray(call()), np.asarray(expected))
