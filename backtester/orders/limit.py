"""Limit: a buy fills once the price is at or below its limit, at the limit or at a better open; a
sell mirrors it. Resting, it adds liquidity (maker); marketable the moment it becomes eligible, it
takes it at the open (taker, slipping no further than its limit)."""

from __future__ import annotations

import numpy as np

from backtester.domain.enums import BUY
from backtester.orders.base import LiveOrder, OrderKind, Path, Trigger, first_reach, limit_trigger


class Limit(OrderKind):
    name = "limit"
    needs_limit = True

    def trigger(self, live: LiveOrder, path: Path, start: float) -> Trigger | None:
        limit = live.order.limit_price
        assert limit is not None
        return limit_trigger(live, path, start, limit)

    def wake(self, live: LiveOrder, low: np.ndarray, high: np.ndarray, start: int) -> int:
        limit = live.order.limit_price
        assert limit is not None
        buy = live.order.side is BUY
        return first_reach(low if buy else high, limit, buy, start)
