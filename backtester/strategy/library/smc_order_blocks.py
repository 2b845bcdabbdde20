"""SmcOrderBlocks: trade with the market structure, entering where it last turned.

While the structure is bullish (the latest break of a swing was upward: a BOS or a CHoCH), a bar
that trades back into the latest still-valid bullish order block and closes inside or above it
buys `position_fraction` of the cash at the next open; a stop rests below the block's bottom.
The position is closed when the structure turns bearish, or by the stop. Every input is a
Smart Money Concepts array known at the bar's close (`backtester.indicators.smc`), so the
strategy passes the look-ahead check; the run report draws the zones it traded.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec
import numpy as np

from backtester.domain.enums import BUY, SELL
from backtester.domain.messages import Bar, OrderFilled
from backtester.indicators import smc
from backtester.strategy.base import Strategy


class SmcOrderBlocksParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    swing_length: int = 30
    position_fraction: float = 1.0
    stop_buffer_pct: float = 0.2

    def __post_init__(self) -> None:
        if self.swing_length < 1:
            raise ValueError(f"swing_length must be >= 1, got {self.swing_length}")
        if not 0.0 < self.position_fraction <= 1.0:
            raise ValueError(f"position_fraction must be in (0, 1], got {self.position_fraction}")
        if self.stop_buffer_pct < 0.0:
            raise ValueError(f"stop_buffer_pct must be >= 0, got {self.stop_buffer_pct}")


class SmcOrderBlocks(Strategy[SmcOrderBlocksParams]):
    Params = SmcOrderBlocksParams
    report_overlays: ClassVar[tuple[str, ...]] = ("smc",)

    def on_start(self) -> None:
        frame = self.ctx.data[self.ctx.primary]
        columns = [frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume")]
        o, h, low, c, v = columns
        length = self.params.swing_length
        trend = smc.structure(h, low, c, length).trend
        blocks = smc.order_blocks(o, h, low, c, v, length)
        for name, values in (
            ("smc_trend", trend),
            ("smc_block_top", blocks.bull_top),
            ("smc_block_bottom", blocks.bull_bottom),
        ):
            self.ctx.register_indicator(name, values)
        touched = (trend > 0) & (low <= blocks.bull_top) & (c >= blocks.bull_bottom)
        turned = np.concatenate(([False], (trend[1:] < 0) & (trend[:-1] >= 0)))
        self._active = np.flatnonzero(touched | turned)
        self._trend = trend.tolist()
        self._bottom = blocks.bull_bottom.tolist()
        self._touched = touched.tolist()
        self._symbol = self.ctx.primary
        self._entry_id: int | None = None
        self._stop_id: int | None = None
        self._stop_level = 0.0

    def active_bars(self) -> np.ndarray:
        return self._active

    def on_bar(self, bar: Bar) -> None:
        if bar.instrument != self._symbol:
            return
        i = bar.index
        held = self.ctx.positions[self._symbol]
        if held > 0.0 and self._trend[i] < 0:
            self._cancel_stop()
            self.sell(fraction=1.0, tag="structure turned")
        elif held == 0.0 and self._touched[i] and not self._entry_pending():
            self._stop_level = self._bottom[i] * (1.0 - self.params.stop_buffer_pct / 100.0)
            self._entry_id = self.buy(fraction=self.params.position_fraction, tag="order block")

    def on_fill(self, fill: OrderFilled) -> None:
        held = self.ctx.positions[self._symbol]
        if fill.side is BUY and fill.order_id == self._entry_id and fill.leaves_quantity == 0.0:
            self._stop_id = self.sell(fraction=1.0, stop=self._stop_level, tag="stop_loss")
        elif fill.side is SELL and held == 0.0:
            self._cancel_stop()

    def _entry_pending(self) -> bool:
        return self._entry_id is not None and self._entry_id in self.ctx.open_orders

    def _cancel_stop(self) -> None:
        if self._stop_id is not None and self._stop_id in self.ctx.open_orders:
            self.cancel(self._stop_id)
        self._stop_id = None
