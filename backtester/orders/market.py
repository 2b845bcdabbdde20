"""Market: fills at the open of its first eligible bar (at the placing bar's close with
trade_on_close), taking liquidity; released mid-bar by another order's fill, at the price then."""

from __future__ import annotations

from backtester.domain.enums import TAKER
from backtester.orders.base import LiveOrder, OrderKind, Path, Trigger, price_at


class Market(OrderKind):
    name = "market"
    immediate = True

    def trigger(self, live: LiveOrder, path: Path, start: float) -> Trigger | None:
        return Trigger(start, path[0] if start == 0.0 else price_at(path, start), TAKER, True)
