"""Spot cash account in one quote currency, booked fill by fill.

Money is float64 booked in a fixed order (see adr/0003): every booking is one deterministic expression,
so the ledger replays bit for bit and reconciles exactly against the fills that produced it.
"""

from __future__ import annotations

import numpy as np

from backtester.core.bus import MessageBus
from backtester.core.clock import SimClock
from backtester.domain.enums import BUY
from backtester.domain.messages import AccountState, OrderFilled, PositionChanged


class AccountLedger:
    def __init__(
        self,
        bus: MessageBus,
        clock: SimClock,
        instruments: tuple[str, ...],
        currency: str,
        initial_cash: float,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self.instruments = instruments
        self.currency = currency
        self.initial_cash = initial_cash
        self.cash = initial_cash
        self.fees_paid = 0.0
        self.realized_pnl = 0.0
        self.positions: dict[str, float] = dict.fromkeys(instruments, 0.0)
        self.avg_prices: dict[str, float] = dict.fromkeys(instruments, 0.0)
        # The booking journal: state after each fill, from which the equity curve is sampled.
        self._journal_ts: list[int] = []
        self._journal_cash: list[float] = []
        self._journal_positions: dict[str, list[float]] = {s: [] for s in instruments}

    def subscribe(self, bus: MessageBus) -> None:
        bus.subscribe(OrderFilled, self.on_filled)

    def on_filled(self, fill: OrderFilled) -> None:
        symbol = fill.instrument
        quantity = fill.quantity
        held = self.positions[symbol]
        notional = quantity * fill.price
        if fill.side is BUY:
            self.cash -= notional + fill.fee
            new_position = held + quantity
            self.avg_prices[symbol] = (self.avg_prices[symbol] * held + notional) / new_position
        else:
            self.cash += notional - fill.fee
            self.realized_pnl += (fill.price - self.avg_prices[symbol]) * quantity
            new_position = held - quantity
            if new_position == 0.0:
                self.avg_prices[symbol] = 0.0
        self.positions[symbol] = new_position
        self.fees_paid += fill.fee
        # Booked now (the clock: the close of the bar being handled), which is monotonic even when
        # a coarser stream's fill is stamped with an earlier bar open.
        self._journal_ts.append(self._clock.now)
        self._journal_cash.append(self.cash)
        for s in self.instruments:
            self._journal_positions[s].append(self.positions[s])
        now = self._clock.now
        self._bus.publish(
            PositionChanged(
                instrument=symbol,
                quantity=new_position,
                avg_price=self.avg_prices[symbol],
                realized_pnl=self.realized_pnl,
                ts_event=now,
                ts_init=now,
            )
        )
        self._bus.publish(
            AccountState(
                currency=self.currency,
                cash=self.cash,
                fees_paid=self.fees_paid,
                realized_pnl=self.realized_pnl,
                ts_event=now,
                ts_init=now,
                fill=fill,
            )
        )

    def sample(self, timestamps: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Cash and positions as they stood at the end of each timestamp (after that time's fills)."""
        journal_ts = np.asarray(self._journal_ts, dtype=np.int64)
        at = np.searchsorted(journal_ts, timestamps, side="right") - 1
        booked = at >= 0
        cash = np.full(len(timestamps), self.initial_cash)
        cash[booked] = np.asarray(self._journal_cash)[at[booked]]
        positions: dict[str, np.ndarray] = {}
        for symbol in self.instruments:
            held = np.zeros(len(timestamps))
            held[booked] = np.asarray(self._journal_positions[symbol])[at[booked]]
            positions[symbol] = held
        return cash, positions
