"""Connects a user's Strategy to the bus: it feeds the hooks and keeps the context's view current."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backtester.core.bus import MessageBus
from backtester.domain.messages import (
    AccountState,
    Bar,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderModifyRejected,
    OrderReleased,
    PositionLiquidated,
    SubmitOrder,
)
from backtester.strategy.base import OrderEvent, Strategy
from backtester.strategy.context import OpenOrder, StrategyContext
from backtester.strategy.signal import SignalStrategy


class StrategyModule:
    def __init__(self, strategy: Strategy[Any], ctx: StrategyContext) -> None:
        self.strategy = strategy
        self.ctx = ctx
        # A signal strategy's `on_bar` does nothing on a bar whose signal is 0 (most bars): its
        # signal, set at `start`, tells the bar handler which bars to call it on.
        self._signals: list[int] | None = (
            []
            if isinstance(strategy, SignalStrategy)
            and type(strategy).on_bar is SignalStrategy.on_bar
            else None
        )
        self.on_bar = _bar_handler(ctx.last_bar, strategy.on_bar, self._signals)
        # Held: the per-order handlers should not look up what they can hold.
        self._open_orders = ctx.open_orders
        # Only a strategy that listens is told of every order answer.
        self._on_order = (
            strategy.on_order if type(strategy).on_order is not Strategy.on_order else None
        )

    def subscribe(self, bus: MessageBus) -> None:
        # Settled: the strategy sees a bar after the fills that bar caused are booked.
        bus.subscribe(Bar, self.on_bar, settled=True)
        bus.subscribe(OrderAccepted, self.on_accepted)
        bus.subscribe(OrderFilled, self.on_filled)
        bus.subscribe(OrderDenied, self.on_closed)
        bus.subscribe(OrderCanceled, self.on_closed)
        bus.subscribe(OrderExpired, self.on_closed)
        bus.subscribe(OrderModified, self.on_changed)
        bus.subscribe(OrderReleased, self.on_changed)
        if self._on_order is not None:
            bus.subscribe(OrderModifyRejected, self._on_order)
            bus.subscribe(OrderCancelRejected, self._on_order)
        bus.subscribe(PositionLiquidated, self.on_liquidated)
        if type(self.strategy).on_fill is not Strategy.on_fill:
            bus.subscribe(AccountState, self.on_account)

    def start(self) -> None:
        self.strategy.on_start()
        if self._signals is not None:
            assert isinstance(self.strategy, SignalStrategy)
            self._signals[:] = self.strategy.bar_signals()

    def stop(self) -> None:
        self.strategy.on_stop()

    def on_accepted(self, event: OrderAccepted) -> None:
        order = event.order
        # `_open_order`, written out: one per accepted order.
        self._open_orders[order.order_id] = OpenOrder(
            order.order_id,
            order.instrument,
            order.side,
            order.order_type,
            order.quantity,
            order.fraction,
            order.limit_price,
            order.stop_price,
            order.tag,
            0.0,
            order.parent_id,
            order.oco_id,
            order.parent_id is None,
        )
        if self._on_order is not None:
            self._on_order(event)

    def on_changed(self, event: OrderModified | OrderReleased) -> None:
        order = event.order
        known = self._open_orders.get(order.order_id)
        if known is not None:
            view = _open_order(order, live=True)
            view.filled_quantity = known.filled_quantity
            self._open_orders[order.order_id] = view
        if self._on_order is not None:
            self._on_order(event)

    def on_filled(self, fill: OrderFilled) -> None:
        # The ledger books the fill into the account the context reads (adr/0023).
        open_orders = self._open_orders
        order_id = fill.order_id
        if order_id not in open_orders:
            return
        open_orders[order_id].filled_quantity += fill.quantity
        if fill.leaves_quantity == 0.0:
            del open_orders[order_id]

    def on_closed(self, event: OrderDenied | OrderCanceled | OrderExpired) -> None:
        self._open_orders.pop(event.order_id, None)
        if self._on_order is not None:
            self._on_order(event)

    def on_liquidated(self, event: PositionLiquidated) -> None:
        self.strategy.on_liquidation(event)

    def on_account(self, event: AccountState) -> None:
        # After the ledger booked the fill: the hook sees the books as they stand after it.
        if event.fill is not None:
            self.strategy.on_fill(event.fill)


def _bar_handler(
    last_bar: dict[str, Bar], on_bar: Callable[[Bar], None], signals: list[int] | None = None
) -> Callable[[Bar], None]:
    """The strategy's bar handler: the context's latest bar, then the hook (with `signals`, a
    signal strategy's per bar: only on a bar whose signal is not 0, where it does something). A
    closure over them, not a method: it runs for every bar, and a bound method's call and its
    two attribute loads are about 6% of a dense run whose strategy does nothing."""

    if signals is not None:
        # Indexed as `SignalStrategy.on_bar` indexes it (a bar past its end fails the same way).
        def handle(bar: Bar) -> None:
            last_bar[bar.instrument] = bar
            if signals[bar.index]:
                on_bar(bar)

    else:

        def handle(bar: Bar) -> None:
            last_bar[bar.instrument] = bar
            on_bar(bar)

    # Named as the method it stands for, in a failing handler's report.
    handle.__qualname__ = "StrategyModule.on_bar"
    return handle


def _open_order(order: SubmitOrder, live: bool) -> OpenOrder:
    # Positional, in OpenOrder's field order (one view per accepted order).
    return OpenOrder(
        order.order_id,
        order.instrument,
        order.side,
        order.order_type,
        order.quantity,
        order.fraction,
        order.limit_price,
        order.stop_price,
        order.tag,
        0.0,
        order.parent_id,
        order.oco_id,
        live,
    )


__all__ = ["OrderEvent", "StrategyModule"]
