"""Session-wide setup."""

from __future__ import annotations

import numpy as np
import pytest

from backtester import Backtest
from backtester.compiled import indicators
from backtester.metrics.stats import bar_interval_ns
from backtester.strategies import SmaCross
from backtester.strategy.library.sma_cross import sma_cross_signals
from tests.engine_support import bars_frame


@pytest.fixture(scope="session", autouse=True)
def _kernels_compiled() -> None:
    """Load the kernels (building them ahead of time if this checkout has not yet, or compiling
    them just in time where that cannot be done) once, up front: that can take seconds, which
    hypothesis's per-example deadline would otherwise count against a test."""
    prices = np.linspace(100.0, 110.0, 64).round(2)
    closes = [p + (0.5 if i % 7 else -0.5) for i, p in enumerate(prices)]
    rows = [(p, p + 1.0, p - 1.0, c, 10.0) for p, c in zip(prices, closes, strict=True)]
    warm = Backtest(bars_frame(rows), SmaCross, fee_rate=0.001, mode="compiled").run(fast=2, slow=5)
    assert warm.stats["fills"] > 0  # so the round-trip kernel ran too
    sma_cross_signals(prices + 1e-3 / 3, 2, 5)  # the path for prices off any tick grid
    out = np.empty(len(prices))
    indicators.window_sums_in_ticks(prices, 3, 100, out)
    indicators.crossover_signal(out, 3, out, 5, np.zeros(len(prices), np.int8))
    bar_interval_ns(np.arange(5, dtype=np.int64))
