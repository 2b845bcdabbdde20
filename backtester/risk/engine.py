"""The risk module: rounds orders onto the instrument's grids and accepts or denies each with a reason."""

from __future__ import annotations

import msgspec

from backtester.config import RiskConfig
from backtester.core.bus import MessageBus
from backtester.core.clock import SimClock
from backtester.domain.enums import BUY, TAKER
from backtester.domain.instrument import Instrument
from backtester.domain.messages import (
    AccountState,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    PositionChanged,
    SubmitOrder,
)
from backtester.domain.models import FeeModel
from backtester.risk import rules


class RiskEngine:
    """Tracks cash and positions from account events, and the cash that open buy orders have claimed,
    so two buys cannot both spend the same money."""

    def __init__(
        self,
        bus: MessageBus,
        clock: SimClock,
        instruments: dict[str, Instrument],
        fees: FeeModel,
        config: RiskConfig,
        initial_cash: float,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._instruments = instruments
        self._fees = fees
        self._config = config
        self._limits_position = (
            config.max_position_quantity is not None or config.max_position_notional is not None
        )
        self._cash = initial_cash
        self._positions: dict[str, float] = dict.fromkeys(instruments, 0.0)
        self._reserved: dict[int, float] = {}
        self._pending_buys: dict[int, tuple[str, float]] = {}

    def subscribe(self, bus: MessageBus) -> None:
        bus.subscribe(SubmitOrder, self.on_submit)
        bus.subscribe(AccountState, self.on_account)
        bus.subscribe(PositionChanged, self.on_position)
        bus.subscribe(OrderFilled, self.on_filled)
        bus.subscribe(OrderCanceled, self.on_closed)
        bus.subscribe(OrderExpired, self.on_closed)

    def on_submit(self, order: SubmitOrder) -> None:
        reason, accepted = self._evaluate(order)
        now = self._clock.now
        if reason is not None or accepted is None:
            self._bus.publish(
                OrderDenied(
                    order_id=order.order_id, reason=reason or "denied", ts_event=now, ts_init=now
                )
            )
            return
        self._bus.publish(OrderAccepted(order=accepted, ts_event=now, ts_init=now))

    def _evaluate(self, order: SubmitOrder) -> tuple[str | None, SubmitOrder | None]:
        instrument = self._instruments.get(order.instrument)
        if instrument is None:
            return f"unknown instrument {order.instrument!r}", None
        reason = rules.check_shape(order)
        if reason:
            return reason, None
        order = _on_grids(order, instrument)
        price = rules.expected_price(order)
        available = self._cash - sum(self._reserved.values())
        position = self._positions[order.instrument]
        if order.quantity is not None:
            quantity = order.quantity
            reason = rules.check_quantity_bounds(quantity, instrument)
        elif order.side is BUY:
            if available <= 0:
                return f"insufficient cash: available {available:.8g}", None
            assert order.fraction is not None
            quantity = self._fees.affordable_quantity(order.fraction * available, price, TAKER)
        else:
            if position <= 0:
                return "insufficient position: nothing to sell (spot: no short)", None
            assert order.fraction is not None
            quantity = order.fraction * position
        if reason:
            return reason, None
        notional = quantity * price
        if order.fraction is not None and order.side is BUY:
            # Sized from available cash by construction; a cost check would only see float rounding.
            cost = order.fraction * available
            balance_reason = None
        else:
            cost = notional + self._fees.fee(notional, TAKER)
            balance_reason = rules.check_spot_balance(
                order.side, quantity, cost, available, position
            )
        reason = rules.check_notional(notional, instrument) or balance_reason
        if reason:
            return reason, None
        if self._limits_position and order.side is BUY:
            reason = rules.check_max_position(
                position + self._pending_quantity(order.instrument) + quantity,
                price,
                self._config.max_position_quantity,
                self._config.max_position_notional,
            )
            if reason:
                return reason, None
        if order.side is BUY:
            self._reserved[order.order_id] = cost
            self._pending_buys[order.order_id] = (order.instrument, quantity)
        return None, order

    def _pending_quantity(self, instrument: str) -> float:
        return sum(q for symbol, q in self._pending_buys.values() if symbol == instrument)

    def on_account(self, event: AccountState) -> None:
        self._cash = event.cash

    def on_position(self, event: PositionChanged) -> None:
        self._positions[event.instrument] = event.quantity

    def on_filled(self, fill: OrderFilled) -> None:
        if fill.leaves_quantity == 0.0:
            self._release(fill.order_id)
        elif fill.order_id in self._pending_buys:
            # Keep the claim on cash proportional to what is still to fill.
            symbol, quantity = self._pending_buys[fill.order_id]
            left = max(quantity - fill.quantity, 0.0)
            share = left / quantity if quantity > 0 else 0.0
            self._reserved[fill.order_id] *= share
            self._pending_buys[fill.order_id] = (symbol, left)

    def on_closed(self, event: OrderCanceled | OrderExpired) -> None:
        self._release(event.order_id)

    def _release(self, order_id: int) -> None:
        self._reserved.pop(order_id, None)
        self._pending_buys.pop(order_id, None)


def _on_grids(order: SubmitOrder, instrument: Instrument) -> SubmitOrder:
    """Quantity floored to the lot size (never rounded up), prices to the nearest tick."""
    changes: dict[str, float] = {}
    if order.quantity is not None and instrument.lot_size is not None:
        changes["quantity"] = instrument.floor_quantity(order.quantity)
    if order.limit_price is not None and instrument.tick_size is not None:
        changes["limit_price"] = instrument.round_price(order.limit_price)
    if order.stop_price is not None and instrument.tick_size is not None:
        changes["stop_price"] = instrument.round_price(order.stop_price)
    if not changes:
        return order
    return msgspec.structs.replace(order, **changes)
