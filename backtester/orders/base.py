"""What every order type shares: the bar's assumed price path, a trigger on it, the venue's live
state of an order, and the interface an order type implements.

A bar is read as a path through four points, open -> first extreme -> second extreme -> close, with
price moving linearly between them; path times run from 0 (the open) to 3 (the close). An order
type says when on that path its order fills and at what price (`trigger`), what it remembers from a
bar it did not fill on (`settle`), and, for signal mode, the first later row on which it could fill
(`wake`) and what the rows skipped before then did to it (`skip`). Risk asks it whether an order is
well formed (`validate`) and what price to expect (`expected_price`).
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec
import numpy as np

from backtester.domain.enums import BUY, MAKER, TAKER, Liquidity
from backtester.domain.instrument import Instrument
from backtester.domain.messages import Bar, SubmitOrder

Path = tuple[float, float, float, float]
END = 3.0  # the path time of the close


class Trigger(NamedTuple):
    time: float
    price: float
    liquidity: Liquidity
    slips: bool
    # A limit the slipped price may not pass (a marketable limit takes liquidity only up to it).
    limit: float | None = None


def bar_path(bar: Bar, low_first: bool) -> Path:
    if low_first:
        return (bar.open, bar.low, bar.high, bar.close)
    return (bar.open, bar.high, bar.low, bar.close)


def price_at(path: Path, time: float) -> float:
    segment = min(int(time), 2)
    a, b = path[segment], path[segment + 1]
    return a + (b - a) * (time - segment)


def touch(path: Path, level: float, below: bool, start: float = 0.0) -> tuple[float, float] | None:
    """First (time, price) at or after `start` where price <= level (`below`) or >= level."""
    segment = min(int(start), 2)
    a, b = path[segment], path[segment + 1]
    here = a + (b - a) * (start - segment)
    if (here <= level) if below else (here >= level):
        return start, here
    for k in range(segment, 3):
        a, b = path[k], path[k + 1]
        if (b <= level) if below else (b >= level):
            # `a` is on the far side of the level here, so the crossing lies inside this segment.
            t = k + (a - level) / (a - b) if a != b else float(k)
            return max(t, start), level
    return None


def first_reach(series: np.ndarray, level: float, below: bool, start: int) -> int:
    """First row at or after `start` where `series <= level` (`below`) or `>= level`; `len(series)`
    if none. Scans in growing chunks: a resting order usually triggers soon, sometimes never."""
    n = len(series)
    chunk = 64
    while start < n:
        window = series[start : start + chunk]
        found = np.flatnonzero(window <= level if below else window >= level)
        if len(found):
            return start + int(found[0])
        start += chunk
        chunk *= 4
    return n


class LiveOrder(msgspec.Struct, eq=False):
    """The venue's state of one accepted order: what is left to fill, and what its type remembers
    between bars (a stop-limit's armed stop, a trailing stop's extreme). A struct (built in C,
    one per accepted order) compared by identity, as the books that hold it need."""

    order: SubmitOrder
    kind: OrderKind
    seq: int
    accepted_ts: int
    # What is left to fill: the order's quantity; None until a fraction order is sized at its
    # first fill.
    remaining: float | None
    # A stop-limit whose stop has been reached: a limit order from then on.
    armed: bool = False
    # Not yet through a bar: a limit that can fill at once takes liquidity.
    fresh: bool = True
    # A trailing stop's best price since it started trailing (activated: it has).
    extreme: float = 0.0
    activated: bool = False
    # A triggered trailing stop-limit: its limit price from then on.
    level: float = 0.0
    # Signal mode: the next row whose range can trigger this order (None: not scanned yet).
    wake: int | None = None
    # The last row of its instrument the venue matched it against (-1: none yet).
    seen: int = -1
    # Time in force: the time (ns) from which it is expired (GTD, DAY), else None.
    expires: int | None = None
    # Linked orders: the other legs of its one-cancels-other group; orders released by its fill.
    oco: list[LiveOrder] = msgspec.field(default_factory=list)
    children: list[LiveOrder] = msgspec.field(default_factory=list)
    closed: bool = False


class OrderKind:
    """One order type. Subclass, set `name`, implement `trigger` (and whatever else differs), and
    register an instance (`backtester.orders.register`). Methods must be deterministic and must
    not keep state outside the `LiveOrder` they are given."""

    name = ""
    # Which prices the order carries: a limit price, a stop (trigger) price.
    needs_limit = False
    needs_stop = False
    # Fills at the open of its first eligible bar, or at the placing bar's close with
    # trade_on_close (a market order).
    immediate = False
    # Remembers something from every bar (a trailing stop's extreme): signal mode must tell it what
    # the rows it skipped did (`skip`).
    tracks_bars = False

    # --- risk -----------------------------------------------------------------------------------

    def validate(self, order: SubmitOrder) -> str | None:
        """Why the order is malformed for this type, or None."""
        if self.needs_limit != (order.limit_price is not None) and not (
            self.needs_limit and order.limit_offset_pct is not None
        ):
            return f"{self.name} order {'needs' if self.needs_limit else 'takes no'} limit price"
        if self.needs_stop != (order.stop_price is not None) and not (
            self.needs_stop and order.stop_offset_pct is not None
        ):
            return f"{self.name} order {'needs' if self.needs_stop else 'takes no'} stop price"
        return None

    def on_grids(self, order: SubmitOrder, instrument: Instrument) -> SubmitOrder:
        """The order with its prices on the instrument's tick grid."""
        if instrument.tick_size is None:
            return order
        changes: dict[str, float] = {}
        if order.limit_price is not None:
            changes["limit_price"] = instrument.round_price(order.limit_price)
        if order.stop_price is not None:
            changes["stop_price"] = instrument.round_price(order.stop_price)
        return msgspec.structs.replace(order, **changes) if changes else order

    def expected_price(self, order: SubmitOrder) -> float:
        """The best pre-fill guess of the fill price: the order's own price, else the last price."""
        if order.limit_price is not None:
            return order.limit_price
        if order.stop_price is not None:
            return order.stop_price
        return order.ref_price

    # --- the venue --------------------------------------------------------------------------------

    def start(self, live: LiveOrder, reference: float) -> None:
        """The order goes live at `reference`, the price known then (the last close, or the fill
        price of the order that released it)."""

    def trigger(self, live: LiveOrder, path: Path, start: float) -> Trigger | None:
        """When, at or after path time `start`, the order fills on this bar's path, and how; None if
        it does not. Must not change `live`: the venue may ask again on another path."""
        raise NotImplementedError

    def settle(self, live: LiveOrder, path: Path, start: float) -> None:
        """The order went through the bar's path from `start` without filling: remember what it
        needs to (a stop-limit whose stop was reached is armed)."""

    def wake(self, live: LiveOrder, low: np.ndarray, high: np.ndarray, start: int) -> int:
        """Signal mode: the first row at or after `start` on which the order could fill (a row it
        cannot fill on may be skipped); `len(low)` if none."""
        return start

    def skip(
        self, live: LiveOrder, low: np.ndarray, high: np.ndarray, start: int, end: int
    ) -> None:
        """Signal mode skipped rows `start` to `end` (exclusive), on none of which it could fill:
        update what `settle` would have remembered (only for `tracks_bars` types)."""


def limit_trigger(live: LiveOrder, path: Path, start: float, level: float) -> Trigger | None:
    """A resting limit at `level`: maker at the limit (or at a better open), but taker, slipping, when
    it can fill the moment it becomes eligible (it takes the liquidity resting on the other side)."""
    hit = touch(path, level, below=live.order.side is BUY, start=start)
    if hit is None:
        return None
    if live.fresh and hit[0] == start:
        return Trigger(hit[0], hit[1], TAKER, True, level)
    return Trigger(hit[0], hit[1], MAKER, False)
