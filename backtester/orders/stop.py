"""Stop (stop-market): a buy triggers once the price is at or above its stop and fills there (or at
a worse open that gapped through it), taking liquidity; a sell mirrors it. Market-if-touched is the
same order on the other side of the price: a buy triggers at or below its level."""

from __future__ import annotations

import numpy as np

from backtester.domain.enums import BUY, TAKER
from backtester.orders.base import LiveOrder, OrderKind, Path, Trigger, first_reach, touch


class Stop(OrderKind):
    name = "stop"
    needs_stop = True
    # A stop buys when the price rises to it; if-touched orders buy when it falls to them.
    buys_below = False

    def trigger(self, live: LiveOrder, path: Path, start: float) -> Trigger | None:
        stop = live.order.stop_price
        assert stop is not None
        below = (live.order.side is BUY) == self.buys_below
        hit = touch(path, stop, below=below, start=start)
        return None if hit is None else Trigger(hit[0], hit[1], TAKER, True)

    def wake(self, live: LiveOrder, low: np.ndarray, high: np.ndarray, start: int) -> int:
        stop = live.order.stop_price
        assert stop is not None
        below = (live.order.side is BUY) == self.buys_below
        return first_reach(low if below else high, stop, below, start)


class MarketIfTouched(Stop):
    name = "market_if_touched"
    buys_below = True
