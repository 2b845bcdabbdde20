"""Session-wide setup."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import settings

from backtester import Backtest
from backtester.compiled import indicators
from backtester.metrics.stats import bar_interval_ns
from backtester.strategies import SmaCross
from backtester.strategy.library.sma_cross import sma_cross_signals
from tests.engine_support import bars_frame

# No per-example deadline: a wall-clock limit is a timed test, and on a shared or loaded machine it
# fails examples that are merely slow there. Speed is measured by the benchmarks in scripts/.
settings.register_profile("no-deadline", deadline=None)
settings.load_profile("no-deadline")


@pytest.fixture(scope="session", autouse=True)
def _kernels_compiled() -> None:
    """Load the kernels (building them ahead of time if this checkout has not yet, or compiling
    them just in time where that cannot be done) once, up front: that can take seconds, which
    would otherwise land in whichever test first calls a kernel."""
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


@pytest.fixture(autouse=True)
def _environment_unchanged() -> Iterator[None]:
    """A test that leaves the process environment changed changes what every later test, and every
    process they start, sees (a TQDM_DISABLE left behind once hid the CLI's progress bar from a
    later test): monkeypatch.setenv is undone before this check, a plain assignment is not."""
    before = _environment()
    yield
    after = _environment()
    changed = sorted(
        key for key in before.keys() | after.keys() if before.get(key) != after.get(key)
    )
    assert not changed, f"the test left the process environment changed: {changed}"


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}  # pytest's own
