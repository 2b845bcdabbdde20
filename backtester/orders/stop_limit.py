"""Stop-limit: once the stop triggers it is a limit order from that moment on. It fills at once if
the trigger price is within the limit (taking liquidity), else when the rest of the path, or a later
bar, reaches the limit (a triggered stop-limit stays a limit order: the venue arms it).
Limit-if-touched is the same order with its trigger on the other side of the price."""

from __future__ import annotations

import numpy as np

from backtester.domain.enums import BUY, MAKER, TAKER
from backtester.orders.base import (
    LiveOrder,
    OrderKind,
    Path,
    Trigger,
    first_reach,
    limit_trigger,
    touch,
)


class StopLimit(OrderKind):
    name = "stop_limit"
    needs_limit = True
    needs_stop = True
    buys_below = False

    def trigger(self, live: LiveOrder, path: Path, start: float) -> Trigger | None:
        order = live.order
        limit = order.limit_price
        assert limit is not None
        if live.armed:
            return limit_trigger(live, path, start, limit)
        stop_hit = self._stop_hit(live, path, start)
        if stop_hit is None:
            return None
        buy = order.side is BUY
        limit_hit = touch(path, limit, below=buy, start=stop_hit[0])
        if limit_hit is None:
            return None
        at_trigger = limit_hit[0] == stop_hit[0]
        return Trigger(limit_hit[0], limit_hit[1], TAKER if at_trigger else MAKER, False)

    def settle(self, live: LiveOrder, path: Path, start: float) -> None:
        if not live.armed and self._stop_hit(live, path, start) is not None:
            live.armed = True

    def wake(self, live: LiveOrder, low: np.ndarray, high: np.ndarray, start: int) -> int:
        order = live.order
        buy = order.side is BUY
        if live.armed:
            assert order.limit_price is not None
            return first_reach(low if buy else high, order.limit_price, buy, start)
        assert order.stop_price is not None
        below = buy == self.buys_below
        return first_reach(low if below else high, order.stop_price, below, start)

    def _stop_hit(self, live: LiveOrder, path: Path, start: float) -> tuple[float, float] | None:
        stop = live.order.stop_price
        assert stop is not None
        return touch(path, stop, below=(live.order.side is BUY) == self.buys_below, start=start)


class LimitIfTouched(StopLimit):
    name = "limit_if_touched"
    buys_below = True
