"""Keeps the run's order and fill history for the results, by listening to the bus like any module."""

from __future__ import annotations

import functools

import msgspec
import numpy as np
import polars as pl

from backtester.core.bus import MessageBus
from backtester.domain.enums import BUY, OrderStatus
from backtester.domain.messages import (
    FundingPaid,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderReleased,
    PositionLiquidated,
    PositionSettled,
    SubmitOrder,
    SubmitOrderList,
)
from backtester.metrics.trades import FUNDING_SCHEMA, FillColumns
from backtester.results import FILL_SCHEMA, ORDER_SCHEMA, UTC_NS, DeferredFills, Later

# Module constants: reading a member through its Enum class runs a descriptor on Python 3.11.
_ACCEPTED, _DENIED, _FILLED = OrderStatus.ACCEPTED, OrderStatus.DENIED, OrderStatus.FILLED
_PARTIALLY_FILLED = OrderStatus.PARTIALLY_FILLED
_CANCELED, _EXPIRED = OrderStatus.CANCELED, OrderStatus.EXPIRED


class OrderRecord(msgspec.Struct, gc=False):
    """One order's history; holds no references back (untracked by the cycle collector: a run
    keeps one per order, and each would be scanned again at every collection)."""

    order: SubmitOrder
    status: OrderStatus
    reason: str = ""
    filled_quantity: float = 0.0
    filled_notional: float = 0.0
    ts_closed: int | None = None
    terminal_events: int = 0
    code: str = ""


class Recorder:
    def __init__(self) -> None:
        self.orders: dict[int, OrderRecord] = {}
        self.fills: list[OrderFilled] = []
        # Each payment with the number of fills recorded before it.
        self.funding: list[tuple[FundingPaid, int]] = []
        self.denied = 0

    def subscribe(self, bus: MessageBus) -> None:
        bus.subscribe(SubmitOrder, self.on_submit)
        bus.subscribe(OrderAccepted, self.on_accepted)
        bus.subscribe(OrderDenied, self.on_denied)
        bus.subscribe(OrderFilled, self.on_filled)
        bus.subscribe(OrderCanceled, self.on_canceled)
        bus.subscribe(OrderExpired, self.on_expired)
        bus.subscribe(OrderModified, self.on_changed)
        bus.subscribe(OrderReleased, self.on_changed)
        bus.subscribe(SubmitOrderList, self.on_submit_list)
        bus.subscribe(FundingPaid, self.on_funding)
        bus.subscribe(PositionLiquidated, self.on_venue_order)
        bus.subscribe(PositionSettled, self.on_venue_order)

    def on_submit(self, order: SubmitOrder) -> None:
        self.orders[order.order_id] = OrderRecord(order, _ACCEPTED)

    def on_submit_list(self, command: SubmitOrderList) -> None:
        for order in command.orders:
            self.on_submit(order)

    def on_venue_order(self, event: PositionLiquidated | PositionSettled) -> None:
        """An order the venue issued itself: recorded like a strategy's, its fill follows."""
        self.orders[event.order.order_id] = OrderRecord(order=event.order, status=_ACCEPTED)

    def on_funding(self, payment: FundingPaid) -> None:
        self.funding.append((payment, len(self.fills)))

    def on_accepted(self, event: OrderAccepted) -> None:
        record = self.orders[event.order.order_id]
        record.order = event.order

    def on_denied(self, event: OrderDenied) -> None:
        self.denied += 1
        self._terminal(event.order_id, _DENIED, event.ts_event, event.reason)
        self.orders[event.order_id].code = event.code

    def on_filled(self, fill: OrderFilled) -> None:
        self.fills.append(fill)
        record = self.orders[fill.order_id]
        record.filled_quantity += fill.quantity
        record.filled_notional += fill.quantity * fill.price
        if fill.leaves_quantity == 0.0:
            # `_terminal`, written out: one per order.
            record.status = _FILLED
            record.reason = ""
            record.ts_closed = fill.ts_event
            record.terminal_events += 1
        else:
            record.status = _PARTIALLY_FILLED

    def on_canceled(self, event: OrderCanceled) -> None:
        self._terminal(event.order_id, _CANCELED, event.ts_event, event.reason)

    def on_expired(self, event: OrderExpired) -> None:
        self._terminal(event.order_id, _EXPIRED, event.ts_event, event.reason)

    def on_changed(self, event: OrderModified | OrderReleased) -> None:
        record = self.orders.get(event.order.order_id)
        if record is not None:
            record.order = event.order

    def _terminal(self, order_id: int, status: OrderStatus, ts: int, reason: str) -> None:
        record = self.orders[order_id]
        record.status = status
        record.reason = reason
        record.ts_closed = ts
        record.terminal_events += 1

    # The enum columns read each member's `_value_`: the same string as `.value`, without the
    # descriptor call `.value` costs (five per order on a run's frames).

    def fills_frame(self) -> pl.DataFrame:
        fills = self.fills
        return pl.DataFrame(
            {
                "ts": [f.ts_event for f in fills],
                "order_id": [f.order_id for f in fills],
                "instrument": [f.instrument for f in fills],
                "side": [f.side._value_ for f in fills],
                "price": [f.price for f in fills],
                "quantity": [f.quantity for f in fills],
                "fee": [f.fee for f in fills],
                "liquidity": [f.liquidity._value_ for f in fills],
                "leaves_quantity": [f.leaves_quantity for f in fills],
                "tag": [self.orders[f.order_id].order.tag for f in fills],
            },
            schema={**FILL_SCHEMA, "ts": pl.Int64},
        ).with_columns(pl.col("ts").cast(UTC_NS))

    def deferred_fills(self) -> DeferredFills:
        """The fills as the round trips and the digest take them (the columns `fill_columns` reads
        from `fills_frame`, in the same dtypes), with the frame built when first read (adr/0026)."""
        fills = self.fills
        names = [f.instrument for f in fills]
        # The instruments in the order of their first fill (a dict keeps insertion order).
        symbols = list(dict.fromkeys(names))
        if len(symbols) <= 1:
            codes = np.zeros(len(fills), dtype=np.int64)
        else:
            code = {symbol: k for k, symbol in enumerate(symbols)}
            codes = np.array([code[name] for name in names], dtype=np.int64)
        frame = Later(self.fills_frame)
        return DeferredFills(
            frame,
            FillColumns(
                ts=np.array([f.ts_event for f in fills], dtype=np.int64),
                order_id=np.array([f.order_id for f in fills], dtype=np.int64),
                symbols=symbols,
                codes=codes,
                buy=np.array([f.side is BUY for f in fills], dtype=np.bool_),
                price=np.array([f.price for f in fills], dtype=np.float64),
                quantity=np.array([f.quantity for f in fills], dtype=np.float64),
                fee=np.array([f.fee for f in fills], dtype=np.float64),
                tags=functools.partial(_tags, frame),
            ),
        )

    def funding_frame(self) -> pl.DataFrame:
        payments = self.funding
        return pl.DataFrame(
            {
                "ts": [p.ts_event for p, _ in payments],
                "instrument": [p.instrument for p, _ in payments],
                "rate": [p.rate for p, _ in payments],
                "mark_price": [p.mark_price for p, _ in payments],
                "quantity": [p.quantity for p, _ in payments],
                "amount": [p.amount for p, _ in payments],
                "fills_before": [before for _, before in payments],
            },
            schema={**FUNDING_SCHEMA, "ts": pl.Int64},
        ).with_columns(pl.col("ts").cast(UTC_NS))

    def orders_frame(self) -> pl.DataFrame:
        records = list(self.orders.values())
        return pl.DataFrame(
            {
                "order_id": [r.order.order_id for r in records],
                "ts_submitted": [r.order.ts_init for r in records],
                "instrument": [r.order.instrument for r in records],
                "side": [r.order.side._value_ for r in records],
                "type": [str(r.order.order_type) for r in records],
                "time_in_force": [r.order.time_in_force._value_ for r in records],
                "quantity": [r.order.quantity for r in records],
                "fraction": [r.order.fraction for r in records],
                "limit_price": [r.order.limit_price for r in records],
                "stop_price": [r.order.stop_price for r in records],
                "tag": [r.order.tag for r in records],
                "status": [r.status._value_ for r in records],
                "reason": [r.reason for r in records],
                "code": [r.code for r in records],
                "filled_quantity": [r.filled_quantity for r in records],
                "avg_fill_price": [
                    r.filled_notional / r.filled_quantity if r.filled_quantity else None
                    for r in records
                ],
                "ts_closed": [r.ts_closed for r in records],
            },
            schema=ORDER_SCHEMA,
        ).with_columns(pl.col("ts_submitted", "ts_closed").cast(UTC_NS))


def _tags(fills: Later) -> pl.Series:
    return fills()["tag"]
