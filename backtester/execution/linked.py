"""Linked orders at the venue: one-cancels-other groups, and the orders a parent's fill releases
(a bracket's exits), priced from that fill and canceled when the position they protect closes."""

from __future__ import annotations

import msgspec

from backtester.domain.instrument import Instrument
from backtester.domain.messages import OrderCanceled, OrderReleased, SubmitOrder
from backtester.execution.venue_state import VenueState
from backtester.orders import LiveOrder


class LinkedOrders(VenueState):
    def _link(self, live: LiveOrder) -> None:
        """Join the order to its one-cancels-other group and to the parent that releases it."""
        order = live.order
        if order.oco_id is not None:
            for other in self._orders.open_orders():
                if other is not live and other.order.oco_id == order.oco_id:
                    other.oco.append(live)
                    live.oco.append(other)
        if order.parent_id is not None:
            parent = self._orders.get(order.parent_id)
            if parent is not None:
                parent.children.append(live)

    def _on_filled(self, live: LiveOrder, filled: float, price: float) -> list[LiveOrder]:
        """After a fill of `live`: the orders it releases go live at `price` (returned), or grow
        by what it filled."""
        if not live.children:
            return []
        released = self._release(live.order.order_id, price)
        for child in live.children:
            if not child.closed:
                child.remaining = (child.remaining or 0.0) + filled
        self._announce(released)
        return released

    def _release(self, parent_id: int, price: float) -> list[LiveOrder]:
        """The orders waiting for `parent_id`, live now, priced from its fill at `price`."""
        released = []
        for child in self._orders.waiting_for(parent_id):
            child.order = _released(child.order, price, self._instruments[child.order.instrument])
            child.remaining = 0.0
            child.kind.start(child, price)
            # Live from this moment on the parent's bar, marketable or not: eligible at once.
            child.accepted_ts = -1
            child.fresh = True
            self._orders.rest(child)
            released.append(child)
        return released

    def _announce(self, released: list[LiveOrder]) -> None:
        now = self._clock.now
        for child in released:
            self._bus.publish(
                OrderReleased(
                    order=msgspec.structs.replace(
                        child.order, quantity=child.remaining, fraction=None
                    ),
                    ts_event=now,
                    ts_init=now,
                )
            )
        if released:
            self._watch_bars()

    def _position_closed(self, symbol: str, filling: LiveOrder) -> None:
        """The position went flat or flipped: the exits that its entries released are void."""
        now = self._clock.now
        for live in list(self._books[symbol]):
            if live is not filling and live.order.parent_id is not None and not live.closed:
                self._remove(live)
                self._bus.publish(
                    OrderCanceled(
                        order_id=live.order.order_id,
                        reason="position closed",
                        ts_event=now,
                        ts_init=now,
                    )
                )

    def _cancel_others(self, live: LiveOrder) -> None:
        """One leg of a one-cancels-other group filled, even partly: the others go at once."""
        now = self._clock.now
        for other in live.oco:
            if not other.closed:
                self._remove(other)
                self._bus.publish(
                    OrderCanceled(
                        order_id=other.order.order_id,
                        reason=f"one-cancels-other: order {live.order.order_id} filled",
                        ts_event=now,
                        ts_init=now,
                    )
                )
                self._orphan(other)
        live.oco = []


def _released(order: SubmitOrder, price: float, instrument: Instrument) -> SubmitOrder:
    """A linked order's prices set from its parent's fill price (where they are relative to it)."""
    changes: dict[str, float] = {}
    if order.stop_offset_pct is not None:
        changes["stop_price"] = instrument.round_price(
            price * (1.0 + order.stop_offset_pct / 100.0)
        )
    if order.limit_offset_pct is not None:
        changes["limit_price"] = instrument.round_price(
            price * (1.0 + order.limit_offset_pct / 100.0)
        )
    return msgspec.structs.replace(order, **changes) if changes else order
