"""The bar fill rules as functions of one order and one bar path (the order types in
`backtester.orders` own them; this is their view for a single order, without venue state)."""

from __future__ import annotations

from backtester.domain.messages import SubmitOrder
from backtester.orders import LiveOrder, Path, Trigger, bar_path, first_reach, kind_of, touch

__all__ = ["Path", "Trigger", "bar_path", "first_reach", "touch", "trigger"]


def trigger(order: SubmitOrder, path: Path, armed: bool = False) -> Trigger | None:
    """When and how `order`, on its first eligible bar (`armed`: a stop-limit whose stop was reached
    on an earlier bar, a limit order now), fills on `path`."""
    kind = kind_of(order.order_type)
    live = LiveOrder(order, kind, 0, 0, order.quantity)
    kind.start(live, order.ref_price)
    live.armed = armed
    live.fresh = not armed
    return kind.trigger(live, path, 0.0)
