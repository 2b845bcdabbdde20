"""SmaCross: long when the fast simple moving average of closes crosses above the slow one, flat when it
crosses below (with `short`, short: stop and reverse). All-in entries: the whole buying power, sized at
the next bar's open with the fee reserved."""

from __future__ import annotations

import msgspec
import numpy as np

from backtester.compiled.indicators import sma_cross_in_ticks
from backtester.strategy.library.indicators import crossovers, rolling_sum_exact, tick_scale
from backtester.strategy.signal import SignalStrategy


class SmaCrossParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    fast: int = 10
    slow: int = 30
    # Also go short below the slow average (a contract on a margin account).
    short: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.fast < self.slow:
            raise ValueError(f"need 1 <= fast < slow, got fast={self.fast} slow={self.slow}")


def sma_cross_signals(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    """+1 / -1 / 0 per bar: the crossovers of SMA(fast) and SMA(slow), compared exactly."""
    scale = tick_scale(close)
    if scale is not None:
        # Both window sums and the comparison in one pass, as the three steps below would give.
        signal = np.zeros(len(close), dtype=np.int8)
        sma_cross_in_ticks(np.ascontiguousarray(close, dtype=np.float64), fast, slow, scale, signal)
        return signal
    return crossovers(
        rolling_sum_exact(close, fast, scale), fast, rolling_sum_exact(close, slow, scale), slow
    )


class SmaCross(SignalStrategy[SmaCrossParams]):
    Params = SmaCrossParams

    def signals(self) -> np.ndarray:
        close = self.ctx.data[self.ctx.primary]["close"].to_numpy()
        return sma_cross_signals(close, self.params.fast, self.params.slow)
