"""No indicator looks ahead: the value at row t is the same whether or not rows after t exist.
Checked for every public indicator, Smart Money Concepts included (the list is taken from the
modules' `__all__`, so a new one is covered without being named here), bit for bit, on random bars
cut at a random row."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from backtester import indicators as ta
from backtester.indicators import smc

# Short windows, so that most of a short random series is past the warm-up.
SHORT: dict[str, dict[str, Any]] = {
    "macd": {"fastperiod": 3, "slowperiod": 6, "signalperiod": 3},
    "stoch": {"fastk_period": 4, "slowk_period": 2, "slowd_period": 2},
    "stochrsi": {"timeperiod": 4, "fastk_period": 3, "fastd_period": 2},
    "ichimoku": {"tenkan_period": 3, "kijun_period": 5, "senkou_period": 8, "displacement": 4},
    "keltner": {"timeperiod": 4, "atr_period": 3},
    "vwap": {"anchor": "1h"},
    "previous_high_low": {"timeframe": "1h"},
}
SMC_SHORT = {"swing_length": 2}
COLUMN_OF = {"values": "close", "timestamps": "ts"}


def indicator_functions() -> dict[str, Callable[..., Any]]:
    return {
        name: getattr(module, name)
        for module in (ta, smc)
        for name in module.__all__
        if name[0].islower() and inspect.isfunction(getattr(module, name))
    }


def call(name: str, function: Callable[..., Any], bars: dict[str, np.ndarray]) -> list[Any]:
    parameters = inspect.signature(function).parameters
    columns = [
        bars[COLUMN_OF.get(p, p)]
        for p, spec in parameters.items()
        if spec.default is inspect.Parameter.empty
    ]
    options = SHORT.get(name, {"timeperiod": 4} if "timeperiod" in parameters else {})
    if "swing_length" in parameters:
        options = {**options, **SMC_SHORT}
    result = function(*columns, **options)
    return list(result) if isinstance(result, tuple) else [result]


@st.composite
def random_bars(draw: st.DrawFn) -> dict[str, np.ndarray]:
    n = draw(st.integers(min_value=1, max_value=90))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.Generator(np.random.PCG64(seed))
    # A grid of prices (ties and flat windows happen), some zero volumes, and 20-minute bars so
    # that hourly VWAP sessions start inside the series.
    close = np.round(100.0 + np.cumsum(rng.normal(0.0, 1.0, n)), 1)
    open_ = np.round(close + rng.normal(0.0, 0.5, n), 1)
    high = np.maximum(open_, close) + np.round(np.abs(rng.normal(0.0, 0.5, n)), 1)
    low = np.minimum(open_, close) - np.round(np.abs(rng.normal(0.0, 0.5, n)), 1)
    volume = np.where(rng.random(n) < 0.2, 0.0, np.round(rng.random(n) * 10.0, 2))
    ts = np.arange(n, dtype=np.int64) * 1_200_000_000_000
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume, "ts": ts}


def test_every_indicator_is_covered() -> None:
    functions = indicator_functions()
    assert len(functions) >= 36
    assert set(SHORT) <= set(functions)


@settings(max_examples=60, deadline=None)
@given(bars=random_bars(), cut=st.floats(min_value=0.0, max_value=1.0))
def test_cutting_later_rows_never_changes_earlier_values(
    bars: dict[str, np.ndarray], cut: float
) -> None:
    k = int(cut * len(bars["close"]))
    prefix = {name: column[:k] for name, column in bars.items()}
    for name, function in indicator_functions().items():
        whole = call(name, function, bars)
        part = call(name, function, prefix)
        for full_output, cut_output in zip(whole, part, strict=True):
            assert len(cut_output) == k, name
            np.testing.assert_array_equal(cut_output, full_output[:k], err_msg=name)


def test_the_check_catches_an_indicator_that_reads_the_next_row() -> None:
    def centered(values: np.ndarray, timeperiod: int = 3) -> np.ndarray:
        out = np.full(len(values), np.nan)
        out[1:-1] = (values[:-2] + values[1:-1] + values[2:]) / 3.0
        return out

    close = np.arange(10.0) ** 2
    whole = call("centered", centered, {"close": close})[0]
    part = call("centered", centered, {"close": close[:6]})[0]
    assert not np.array_equal(part, whole[:6], equal_nan=True)
