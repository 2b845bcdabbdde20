"""Every indicator TA-Lib also has equals TA-Lib's on the shipped data, warm-up rows included:
NaN exactly where TA-Lib has none, elsewhere within 1e-9 of TA-Lib's value relative to its
magnitude (absolute below 1). Indicators TA-Lib lacks are checked against TA-Lib's building blocks
(MAX, MIN, MIDPRICE, EMA, ATR) or a direct transcription of their definition."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pytest

from backtester import indicators as ta
from backtester.data.bars import load_bars

talib = pytest.importorskip("talib")

DATA = {
    "btc_1m": "golden/data/binance_BTC-USDT_1m.parquet",
    "goog_1d": "tests/data/backtestingpy_GOOG_1d.csv",
}
TOLERANCE = 1e-9


@pytest.fixture(scope="module", params=sorted(DATA))
def bars(request: pytest.FixtureRequest) -> dict[str, np.ndarray]:
    frame = load_bars(DATA[request.param]).frame
    columns = {k: frame[k].to_numpy().astype(np.float64) for k in frame.columns if k != "ts"}
    columns["ts"] = frame["ts"].to_numpy()
    return columns


def assert_same(ours: Any, theirs: Any) -> None:
    ours_list = list(ours) if isinstance(ours, tuple) else [ours]
    theirs_list = list(theirs) if isinstance(theirs, tuple) else [theirs]
    assert len(ours_list) == len(theirs_list)
    for ours_column, theirs_column in zip(ours_list, theirs_list, strict=True):
        mine, reference = np.asarray(ours_column), np.asarray(theirs_column)
        assert mine.dtype == np.float64
        np.testing.assert_array_equal(np.isnan(mine), np.isnan(reference))
        known = ~np.isnan(reference)
        assert known.any()
        scale = np.maximum(1.0, np.abs(reference[known]))
        worst = float((np.abs(mine[known] - reference[known]) / scale).max())
        assert worst <= TOLERANCE, worst


# name -> (ours, TA-Lib's, inputs, parameter sets beyond the defaults)
Case = tuple[Callable[..., Any], Callable[..., Any], tuple[str, ...], list[dict[str, Any]]]
CASES: dict[str, Case] = {
    "sma": (ta.sma, talib.SMA, ("close",), [{"timeperiod": 2}, {"timeperiod": 20}]),
    "ema": (ta.ema, talib.EMA, ("close",), [{"timeperiod": 2}, {"timeperiod": 20}]),
    "wma": (ta.wma, talib.WMA, ("close",), [{"timeperiod": 2}, {"timeperiod": 7}]),
    "dema": (ta.dema, talib.DEMA, ("close",), [{"timeperiod": 5}]),
    "tema": (ta.tema, talib.TEMA, ("close",), [{"timeperiod": 5}]),
    "kama": (ta.kama, talib.KAMA, ("close",), [{"timeperiod": 10}]),
    "rsi": (ta.rsi, talib.RSI, ("close",), [{"timeperiod": 2}, {"timeperiod": 30}]),
    "macd": (
        ta.macd,
        talib.MACD,
        ("close",),
        [{"fastperiod": 5, "slowperiod": 35, "signalperiod": 5}],
    ),
    "bbands": (
        ta.bbands,
        talib.BBANDS,
        ("close",),
        [{"timeperiod": 5, "nbdevup": 1.5, "nbdevdn": 2.5}],
    ),
    "stddev": (ta.stddev, talib.STDDEV, ("close",), [{"timeperiod": 20, "nbdev": 2.0}]),
    "trange": (ta.trange, talib.TRANGE, ("high", "low", "close"), []),
    "atr": (ta.atr, talib.ATR, ("high", "low", "close"), [{"timeperiod": 1}, {"timeperiod": 5}]),
    "natr": (ta.natr, talib.NATR, ("high", "low", "close"), [{"timeperiod": 5}]),
    "adx": (ta.adx, talib.ADX, ("high", "low", "close"), [{"timeperiod": 5}]),
    "plus_di": (ta.plus_di, talib.PLUS_DI, ("high", "low", "close"), [{"timeperiod": 5}]),
    "minus_di": (ta.minus_di, talib.MINUS_DI, ("high", "low", "close"), [{"timeperiod": 5}]),
    "stoch": (
        ta.stoch,
        talib.STOCH,
        ("high", "low", "close"),
        [{"fastk_period": 14, "slowk_period": 1, "slowd_period": 5}],
    ),
    "stochrsi": (
        ta.stochrsi,
        talib.STOCHRSI,
        ("close",),
        [{"timeperiod": 7, "fastk_period": 3, "fastd_period": 2}],
    ),
    "cci": (ta.cci, talib.CCI, ("high", "low", "close"), [{"timeperiod": 20}]),
    "mfi": (ta.mfi, talib.MFI, ("high", "low", "close", "volume"), [{"timeperiod": 5}]),
    "obv": (ta.obv, talib.OBV, ("close", "volume"), []),
    "roc": (ta.roc, talib.ROC, ("close",), [{"timeperiod": 1}]),
    "mom": (ta.mom, talib.MOM, ("close",), [{"timeperiod": 1}]),
    "willr": (ta.willr, talib.WILLR, ("high", "low", "close"), [{"timeperiod": 5}]),
}

MA_TYPES = {"sma": 0, "ema": 1, "wma": 2, "dema": 3, "tema": 4, "kama": 6}


@pytest.mark.parametrize("name", sorted(CASES))
def test_indicator_equals_talib_with_defaults_and_other_parameters(
    name: str, bars: dict[str, np.ndarray]
) -> None:
    ours, theirs, inputs, variants = CASES[name]
    columns = [bars[c] for c in inputs]
    for params in [{}, *variants]:
        assert_same(ours(*columns, **params), theirs(*columns, **params))


@pytest.mark.parametrize("name", sorted(CASES))
def test_defaults_are_talibs(name: str) -> None:
    import inspect

    from talib import abstract

    ours, theirs, _, _ = CASES[name]
    expected = dict(abstract.Function(theirs.__name__).info["parameters"])
    signature = inspect.signature(ours).parameters
    defaults = {k: p.default for k, p in signature.items() if p.default is not p.empty}
    assert set(defaults) == set(expected)
    for key, value in expected.items():
        mine = defaults[key]
        assert (MA_TYPES[mine] if isinstance(mine, str) else mine) == value, key


@pytest.mark.parametrize("matype", sorted(MA_TYPES))
def test_moving_average_types_match_talibs_ma_and_smoothings(
    matype: str, bars: dict[str, np.ndarray]
) -> None:
    close, high, low = bars["close"], bars["high"], bars["low"]
    code = MA_TYPES[matype]
    assert_same(ta.ma(close, 9, matype), talib.MA(close, 9, code))
    assert_same(ta.ma(close, 1, matype), talib.MA(close, 1, code))
    assert_same(
        ta.stoch(high, low, close, slowk_matype=matype, slowd_matype=matype),
        talib.STOCH(high, low, close, slowk_matype=code, slowd_matype=code),
    )
    assert_same(ta.bbands(close, 10, matype=matype), talib.BBANDS(close, 10, matype=code))


def test_leading_nan_are_skipped_like_talib(bars: dict[str, np.ndarray]) -> None:
    smoothed = talib.EMA(bars["close"], 10)
    assert_same(ta.ema(smoothed, 10), talib.EMA(smoothed, 10))
    assert_same(ta.rsi(smoothed), talib.RSI(smoothed))
    assert_same(ta.macd(smoothed), talib.MACD(smoothed))


def test_polars_series_give_the_numpy_result(bars: dict[str, np.ndarray]) -> None:
    series = pl.Series("close", bars["close"])
    np.testing.assert_array_equal(ta.rsi(series), ta.rsi(bars["close"]))


# --- indicators TA-Lib does not have --------------------------------------------------------------


def test_donchian_is_talibs_max_and_min(bars: dict[str, np.ndarray]) -> None:
    upper, middle, lower = ta.donchian(bars["high"], bars["low"], 20)
    assert_same(upper, talib.MAX(bars["high"], 20))
    assert_same(lower, talib.MIN(bars["low"], 20))
    assert_same(middle, talib.MIDPRICE(bars["high"], bars["low"], 20))


def test_keltner_is_talibs_ema_plus_minus_atr(bars: dict[str, np.ndarray]) -> None:
    h, low, c = bars["high"], bars["low"], bars["close"]
    middle = talib.EMA(c, 20)
    width = talib.ATR(h, low, c, 10) * 2.0
    assert_same(ta.keltner(h, low, c), (middle + width, middle, middle - width))


def test_ichimoku_lines_are_talibs_midprice_displaced(bars: dict[str, np.ndarray]) -> None:
    h, low = bars["high"], bars["low"]
    tenkan, kijun = talib.MIDPRICE(h, low, 9), talib.MIDPRICE(h, low, 26)
    span_b = talib.MIDPRICE(h, low, 52)
    shifted_a = np.full(len(h), np.nan)
    shifted_a[26:] = ((tenkan + kijun) / 2.0)[:-26]
    shifted_b = np.full(len(h), np.nan)
    shifted_b[26:] = span_b[:-26]
    assert_same(ta.ichimoku(h, low), (tenkan, kijun, shifted_a, shifted_b))


def test_zscore_is_the_window_z_score(bars: dict[str, np.ndarray]) -> None:
    close = bars["close"]
    windows = np.lib.stride_tricks.sliding_window_view(close, 20)
    expected = np.full(len(close), np.nan)
    std = windows.std(axis=1)
    expected[19:] = np.where(
        std > 0, (close[19:] - windows.mean(axis=1)) / np.where(std > 0, std, 1), 0.0
    )
    assert_same(ta.zscore(close, 20), expected)


def test_vwap_restarts_every_utc_day(bars: dict[str, np.ndarray]) -> None:
    frame = pl.DataFrame(
        {k: bars[k] for k in ("ts", "high", "low", "close", "volume")}
    ).with_columns(day=pl.col("ts") // 86_400_000_000_000)
    expected = frame.select(
        ((pl.col("high") + pl.col("low") + pl.col("close")) / 3.0 * pl.col("volume"))
        .cum_sum()
        .over("day")
        / pl.col("volume").cum_sum().over("day")
    ).to_series()
    ours = ta.vwap(bars["high"], bars["low"], bars["close"], bars["volume"], bars["ts"])
    assert_same(ours, expected.fill_nan(None).to_numpy())


def reference_supertrend(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, atr: np.ndarray, m: float
) -> tuple[np.ndarray, np.ndarray]:
    """TradingView's Pine definition, transcribed line by line."""
    n = len(close)
    line, direction = np.full(n, np.nan), np.full(n, np.nan)
    up = dn = 0.0
    trend = 1
    first = int(np.flatnonzero(~np.isnan(atr))[0])
    for i in range(first, n):
        src = (high[i] + low[i]) / 2
        new_up, new_dn = src - m * atr[i], src + m * atr[i]
        if i == first:
            up, dn = new_up, new_dn
        else:
            up1, dn1 = up, dn
            up = max(new_up, up1) if close[i - 1] > up1 else new_up
            dn = min(new_dn, dn1) if close[i - 1] < dn1 else new_dn
            if trend == -1 and close[i] > dn1:
                trend = 1
            elif trend == 1 and close[i] < up1:
                trend = -1
        line[i] = up if trend == 1 else dn
        direction[i] = trend
    return line, direction


def test_supertrend_follows_tradingviews_definition(bars: dict[str, np.ndarray]) -> None:
    h, low, c = bars["high"], bars["low"], bars["close"]
    expected = reference_supertrend(h, low, c, talib.ATR(h, low, c, 10), 3.0)
    result = ta.supertrend(h, low, c)
    assert_same(result, expected)
    assert set(np.unique(result.direction[~np.isnan(result.direction)])) == {-1.0, 1.0}
