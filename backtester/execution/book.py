"""The venue's open orders: resting in each instrument's book in arrival order, or waiting for the
parent whose fill releases them (the exits of a bracket), each findable by id."""

from __future__ import annotations

from backtester.domain.enums import DAY, GTD
from backtester.domain.messages import SubmitOrder
from backtester.orders import LiveOrder

NS_PER_DAY = 86_400 * 10**9


class OrderBook:
    def __init__(self, symbols: list[str]) -> None:
        self.books: dict[str, list[LiveOrder]] = {symbol: [] for symbol in symbols}
        self._by_id: dict[int, LiveOrder] = {}
        # Parent order id -> the linked orders its first fill releases.
        self._waiting: dict[int, list[LiveOrder]] = {}
        self.resting = 0
        # Orders resting with an expiry time: while there are none, bars skip the expiry check.
        self.timed = 0

    def get(self, order_id: int) -> LiveOrder | None:
        return self._by_id.get(order_id)

    def rest(self, live: LiveOrder) -> None:
        self.books[live.order.instrument].append(live)
        self._by_id[live.order.order_id] = live
        self.resting += 1
        if live.expires is not None:
            self.timed += 1

    def hold(self, live: LiveOrder, parent_id: int) -> None:
        """A linked order that goes live when `parent_id` fills."""
        self._by_id[live.order.order_id] = live
        self._waiting.setdefault(parent_id, []).append(live)

    def waiting_for(self, parent_id: int) -> list[LiveOrder]:
        return self._waiting.pop(parent_id, [])

    def is_waiting(self, live: LiveOrder) -> bool:
        parent = live.order.parent_id
        return parent is not None and live in self._waiting.get(parent, ())

    def remove(self, live: LiveOrder) -> None:
        """Take an open order out, resting or waiting; it is closed from now on."""
        live.closed = True
        self._by_id.pop(live.order.order_id, None)
        book = self.books[live.order.instrument]
        if live in book:
            book.remove(live)
            self.resting -= 1
            if live.expires is not None:
                self.timed -= 1
            return
        parent = live.order.parent_id
        if parent is not None and parent in self._waiting:
            waiting = self._waiting[parent]
            waiting.remove(live)
            if not waiting:
                del self._waiting[parent]

    def open_orders(self) -> list[LiveOrder]:
        """Every open order, resting ones by instrument and arrival, then the waiting ones."""
        resting = [live for book in self.books.values() for live in book]
        return resting + [live for parent in self._waiting for live in self._waiting[parent]]


def expiry_of(order: SubmitOrder, now: int) -> int | None:
    """The time from which the order is expired: GTD at its expire time, DAY at the end of the UTC
    day it was accepted on."""
    if order.time_in_force is GTD:
        return order.expire_time
    if order.time_in_force is DAY:
        return (now // NS_PER_DAY + 1) * NS_PER_DAY
    return None
