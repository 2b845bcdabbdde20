"""HourlyTrendCross: SmaCross on the bars the run steps through, long only while the hourly trend is
up: the last closed hour's close above the simple moving average of the last `trend_hours` hourly
closes. It reads the hours with `ctx.bars("1h")` (resampled from the bars, or a given 1h series)
and spreads them over its bars with `ctx.align`, so a bar sees only hours closed by its own close."""

from __future__ import annotations

from typing import ClassVar

import msgspec
import numpy as np

from backtester.strategy.library.sma_cross import sma_cross_signals
from backtester.strategy.library.sma_extended import uptrend
from backtester.strategy.signal import SignalStrategy


class HourlyTrendCrossParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    fast: int = 10
    slow: int = 30
    trend_hours: int = 24

    def __post_init__(self) -> None:
        if not 1 <= self.fast < self.slow:
            raise ValueError(f"need 1 <= fast < slow, got fast={self.fast} slow={self.slow}")
        if self.trend_hours < 2:
            raise ValueError(f"trend_hours must be >= 2, got {self.trend_hours}")


class HourlyTrendCross(SignalStrategy[HourlyTrendCrossParams]):
    Params = HourlyTrendCrossParams
    # One closed hour is all `on_bar` could need; the signal is computed from all of them at once.
    timeframes: ClassVar[dict[str, int]] = {"1h": 1}

    def signals(self) -> np.ndarray:
        close = self.ctx.data[self.ctx.primary]["close"].to_numpy()
        crossed = sma_cross_signals(close, self.params.fast, self.params.slow)
        hours = self.ctx.bars("1h")["close"].to_numpy()
        trend_up = self.ctx.align("1h", uptrend(hours, self.params.trend_hours).astype(np.float64))
        up = trend_up == 1.0  # NaN before the first closed hour: no trend yet
        # Long from a cross up in an uptrend until a cross down or the trend's end: the state is
        # the latest event's, carried forward.
        events = np.zeros(len(close), dtype=np.int8)
        events[(crossed == -1) | ~up] = -1
        events[(crossed == 1) & up] = 1
        latest = np.maximum.accumulate(np.where(events != 0, np.arange(len(close)), 0))
        long = (events[latest] == 1).astype(np.int8)
        return np.diff(long, prepend=np.int8(0))
