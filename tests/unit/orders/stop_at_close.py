"""A test-local order type: a stop that looks only at the close. It triggers when a bar closes at or
beyond its stop (above for a buy, below for a sell) and fills at that close, taking liquidity. The
whole type is this file; using it takes one `register` call."""

from __future__ import annotations

import numpy as np

from backtester.domain.enums import BUY, TAKER
from backtester.orders import END, LiveOrder, OrderKind, Path, Trigger


class StopAtClose(OrderKind):
    name = "stop_at_close"
    needs_stop = True

    def trigger(self, live: LiveOrder, path: Path, start: float) -> Trigger | None:
        stop = live.order.stop_price
        assert stop is not None
        close = path[3]
        reached = close >= stop if live.order.side is BUY else close <= stop
        return Trigger(END, close, TAKER, True) if reached else None

    def wake(self, live: LiveOrder, low: np.ndarray, high: np.ndarray, start: int) -> int:
        # Bar ranges bound the close: a row whose range does not reach the stop cannot close there.
        stop = live.order.stop_price
        assert stop is not None
        series = high[start:] if live.order.side is BUY else low[start:]
        found = np.flatnonzero(series >= stop if live.order.side is BUY else series <= stop)
        return start + int(found[0]) if len(found) else len(low)
