"""SmaExtended: SmaCross with the controls a live desk would add.

- cooldown: the signals of the `cooldown_bars` bars starting with the bar an exit filled on are
  ignored (0: none);
- daily loss limit: once equity falls `daily_loss_limit_pct` below its value at the day's first bar,
  no new entries for the rest of that UTC day (open positions are still managed);
- trend filter: with `trend_bars`, entries only while the close is above its simple moving average
  over that many bars (exits are not filtered);
- sizing: each entry commits `position_fraction` of equity;
- protection: optional stop-loss and take-profit, resting at the venue once the entry has filled;
  when one fills the other is canceled.
"""

from __future__ import annotations

import msgspec
import numpy as np

from backtester.domain.enums import BUY, SELL
from backtester.domain.messages import Bar, OrderFilled
from backtester.strategy.base import Strategy
from backtester.strategy.library.indicators import rolling_sum_exact, tick_scale
from backtester.strategy.library.sma_cross import sma_cross_signals

NS_PER_DAY = 86_400 * 10**9


class SmaExtendedParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    fast: int = 10
    slow: int = 30
    cooldown_bars: int = 0
    daily_loss_limit_pct: float | None = None
    position_fraction: float = 1.0
    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    trend_bars: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.fast < self.slow:
            raise ValueError(f"need 1 <= fast < slow, got fast={self.fast} slow={self.slow}")
        if self.trend_bars is not None and self.trend_bars < 2:
            raise ValueError(f"trend_bars must be >= 2, got {self.trend_bars}")
        if self.cooldown_bars < 0:
            raise ValueError(f"cooldown_bars must be >= 0, got {self.cooldown_bars}")
        if not 0.0 < self.position_fraction <= 1.0:
            raise ValueError(f"position_fraction must be in (0, 1], got {self.position_fraction}")
        for name in ("daily_loss_limit_pct", "stop_loss_pct", "take_profit_pct"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")


def uptrend(close: np.ndarray, bars: int | None) -> np.ndarray:
    """Per bar: the close is above its simple moving average over `bars` bars, compared exactly
    (in integer ticks when the prices sit on a grid); False until the window fills. None: always."""
    if bars is None:
        return np.ones(len(close), dtype=bool)
    scale = tick_scale(close)
    sums = rolling_sum_exact(close, bars, scale)
    closes = close if scale is None else np.round(close * scale)
    with np.errstate(invalid="ignore"):
        return closes * bars > sums


class SmaExtended(Strategy[SmaExtendedParams]):
    Params = SmaExtendedParams

    def on_start(self) -> None:
        frame = self.ctx.data[self.ctx.primary]
        self.signal = sma_cross_signals(
            frame["close"].to_numpy(), self.params.fast, self.params.slow
        )
        self._bar_times = frame["ts"].to_numpy()
        self._signal = self.signal.tolist()
        self._uptrend = uptrend(frame["close"].to_numpy(), self.params.trend_bars).tolist()
        self._symbol = self.ctx.primary
        self._entry_id: int | None = None
        self._protective: list[int] = []
        self._last_exit_index = -(10**12)
        self._day = -1
        self._day_start_equity = 0.0
        self._halted = False
        self.halted_days: list[int] = []

    def active_bars(self) -> np.ndarray | None:
        # The daily loss limit watches equity on every bar; without it only crossovers matter.
        if self.params.daily_loss_limit_pct is not None:
            return None
        return np.flatnonzero(self.signal)

    def on_bar(self, bar: Bar) -> None:
        if bar.instrument != self._symbol:
            return
        limit = self.params.daily_loss_limit_pct
        if limit is not None:
            self._track_day(bar, limit)
        signal = self._signal[bar.index]
        if signal == 0:
            return
        held = self.ctx.positions[self._symbol]
        if signal < 0 and held > 0.0:
            self._cancel_protective()
            self.sell(fraction=1.0, tag="exit")
        elif signal > 0 and held == 0.0 and self._uptrend[bar.index] and self._may_enter(bar.index):
            budget = self.params.position_fraction * self.equity
            self._entry_id = self.buy(fraction=min(1.0, budget / self.cash), tag="entry")

    def _track_day(self, bar: Bar, limit_pct: float) -> None:
        day = bar.ts_event // NS_PER_DAY
        equity = self.equity
        if day != self._day:
            self._day, self._day_start_equity, self._halted = day, equity, False
        elif not self._halted and equity < self._day_start_equity * (1.0 - limit_pct / 100.0):
            self._halted = True
            self.halted_days.append(day)

    def _may_enter(self, index: int) -> bool:
        if self._halted or self.cash <= 0.0:
            return False
        if self._entry_id is not None and self._entry_id in self.ctx.open_orders:
            return False
        return index - self._last_exit_index >= self.params.cooldown_bars

    def on_fill(self, fill: OrderFilled) -> None:
        held = self.ctx.positions[self._symbol]
        if fill.side is BUY and fill.order_id == self._entry_id and fill.leaves_quantity == 0.0:
            self._protect(self.ctx.avg_prices[self._symbol])
        elif fill.side is SELL and held == 0.0:
            self._cancel_protective()
            # The bar the exit filled on (on_fill runs before that bar reaches on_bar).
            self._last_exit_index = int(np.searchsorted(self._bar_times, fill.ts_event))

    def _protect(self, entry_price: float) -> None:
        if self.params.stop_loss_pct is not None:
            stop = entry_price * (1.0 - self.params.stop_loss_pct / 100.0)
            self._protective.append(self.sell(fraction=1.0, stop=stop, tag="stop_loss"))
        if self.params.take_profit_pct is not None:
            target = entry_price * (1.0 + self.params.take_profit_pct / 100.0)
            self._protective.append(self.sell(fraction=1.0, limit=target, tag="take_profit"))

    def _cancel_protective(self) -> None:
        for order_id in self._protective:
            if order_id in self.ctx.open_orders:
                self.cancel(order_id)
        self._protective = []
