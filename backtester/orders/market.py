"""Market: fills at the open of its first eligible bar (at the placing bar's close with
trade_on_close), taking liquidity; released mid-bar by another order's fill, at the price then."""

from __future__ import annotations

from backtester.domain.enums import TAKER
from backtester.orders.base import LiveOrder, OrderKind, Path, Trigger, price_at

# A NamedTuple built without its generated `__new__`: one per market order's fill.
_new_tuple = tuple.__new__


class Market(OrderKind):
    name = "market"
    immediate = True

    def trigger(self, live: LiveOrder, path: Path, start: float) -> Trigger | None:
        price = path[0] if start == 0.0 else price_at(path, start)
        return _new_tuple(Trigger, (start, price, TAKER, True, None))
