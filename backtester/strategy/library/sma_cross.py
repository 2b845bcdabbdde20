"""SmaCross: long when the fast simple moving average of closes crosses above the slow one, flat when it
crosses below. All-in entries: the whole cash, sized at the next bar's open with the fee reserved."""

from __future__ import annotations

import msgspec
import numpy as np

from backtester.domain.messages import Bar
from backtester.strategy.base import Strategy
from backtester.strategy.library.indicators import crossovers, rolling_sum_exact, tick_scale


class SmaCrossParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    fast: int = 10
    slow: int = 30

    def __post_init__(self) -> None:
        if not 1 <= self.fast < self.slow:
            raise ValueError(f"need 1 <= fast < slow, got fast={self.fast} slow={self.slow}")


def sma_cross_signals(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    """+1 / -1 / 0 per bar: the crossovers of SMA(fast) and SMA(slow), compared exactly."""
    scale = tick_scale(close)
    return crossovers(
        rolling_sum_exact(close, fast, scale), fast, rolling_sum_exact(close, slow, scale), slow
    )


class SmaCross(Strategy[SmaCrossParams]):
    Params = SmaCrossParams

    def on_start(self) -> None:
        close = self.ctx.data[self.ctx.primary]["close"].to_numpy()
        self.signal = sma_cross_signals(close, self.params.fast, self.params.slow)
        self._signal = self.signal.tolist()
        self._positions = self.ctx.positions
        self._symbol = self.ctx.primary

    def active_bars(self) -> np.ndarray:
        return np.flatnonzero(self.signal)

    def on_bar(self, bar: Bar) -> None:
        signal = self._signal[bar.index]
        if signal == 0 or bar.instrument != self._symbol:
            return
        held = self._positions[self._symbol]
        if signal > 0 and held == 0.0:
            self.buy(fraction=1.0, tag="entry")
        elif signal < 0 and held > 0.0:
            self.sell(fraction=1.0, tag="exit")
