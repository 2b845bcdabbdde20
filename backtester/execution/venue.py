"""The simulated venue: holds accepted orders, fills them against later bars, answers cancels, books
funding, liquidates and settles positions.

Like a real exchange it keeps its own account (`accounting`): it sizes fraction orders at the fill
price, caps a fill at what the account can pay for and hold (spot: no negative cash, no short), and,
on a margin account, charges funding and liquidates a position whose mark reaches its liquidation
price along the bar's path. The client-side ledger (`account`) takes what each of its bookings left
when the fill's event reaches it (adr/0029); a test checks that both agree.

Its parts, one job each: the state and the primitives of closing an order (`venue_state`), linked
orders (`linked`), funding, settlement and liquidation (`margin`), the sizing of a fill (`sizing`);
here, accepting orders and matching them against each bar's path.
"""

from __future__ import annotations

import math
import sys
from typing import ClassVar

import numpy as np

from backtester.core.bus import MessageBus
from backtester.domain.enums import BUY, FOK, GTC, IOC, TAKER, Liquidity
from backtester.domain.messages import (
    Bar,
    CancelOrder,
    ContractExpired,
    FundingRate,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderFilled,
    OrderModified,
)
from backtester.execution.book import expiry_of
from backtester.execution.linked import LinkedOrders
from backtester.execution.margin import MarginWatch
from backtester.execution.sizing import FillSizing
from backtester.orders import END, KINDS, LiveOrder, OrderKind, Path, Trigger, bar_path, kind_of

NEVER = sys.maxsize


class SimulatedVenue(LinkedOrders, MarginWatch, FillSizing):
    # Whether a book of one order is matched by `_match_one` (a test turns it off to compare).
    single_lane: ClassVar[bool] = True

    def subscribe(self, bus: MessageBus) -> None:
        if self._fill.trade_on_close:
            bus.subscribe(Bar, self.on_bar_on_close)
        else:
            # Called for bars only while some order rests or a margin position is open: most bars
            # have nothing to match.
            handler = self.on_bar if self._margin is None else self.on_bar_with_margin
            self._bar_subscription = bus.subscribe(Bar, handler)
            self._bar_subscription.pause()
        bus.subscribe(OrderAccepted, self.on_accepted)
        bus.subscribe(CancelOrder, self.on_cancel)
        bus.subscribe(OrderModified, self.on_modified)
        bus.subscribe(FundingRate, self.on_funding)
        bus.subscribe(ContractExpired, self.on_expired)

    # --- handlers ------------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        book = self._books[bar.instrument]
        if book:
            self._match(bar, book)

    def on_bar_with_margin(self, bar: Bar) -> None:
        """A margin account's bar: match it, and watch open positions' liquidation prices."""
        symbol = bar.instrument
        i = bar.index
        cross = self._cross
        if cross:
            self._marks_now[symbol] = self._lists(symbol)[0][i]
        book = self._books[symbol]
        if book:
            self._match(bar, book)
        elif self._exposed:
            guard = self._guards.get(symbol)
            if guard is None:
                guard = self._guard(symbol)
            # Most bars stay clear of the liquidation price: look at the path only when one can't.
            if guard:
                extremes, level, long = guard
                if (extremes[i] <= level) if long else (extremes[i] >= level):
                    self._watch(bar, self._mark_path(bar), 0.0, END)
        if cross:
            self._marks_now[symbol] = self._lists(symbol)[3][i]

    def on_bar_on_close(self, bar: Bar) -> None:
        """With trade_on_close, market orders fill against the bar that placed them: keep it."""
        self._last_bar[bar.instrument] = bar
        if self._margin is None:
            self.on_bar(bar)
        else:
            self.on_bar_with_margin(bar)

    def on_accepted(self, event: OrderAccepted) -> None:
        order = event.order
        self._seq += 1
        now = self._clock.now
        kind = KINDS.get(order.order_type) or kind_of(order.order_type)
        live = LiveOrder(order, kind, self._seq, now, order.quantity)
        if order.time_in_force is not GTC:
            live.expires = expiry_of(order, now)
        parent = order.parent_id
        if parent is not None:
            self._orders.hold(live, parent)
            self._link(live)
            filled = self._filled_on_arrival.get(parent)
            if filled is not None:
                # The parent filled the moment it arrived (trade_on_close), before this order did.
                live.remaining = 0.0
                released = self._release(parent, filled[1])
                for child in released:
                    child.remaining = filled[0]
                self._announce(released)
            return
        if self._filled_on_arrival:
            self._filled_on_arrival.clear()
        if type(kind).start is not OrderKind.start:  # most types start with nothing to set
            kind.start(live, order.ref_price)
        last = self._last_bar.get(order.instrument) if self._fill.trade_on_close else None
        if last is not None and kind.immediate:
            done, filled_now, price = self._execute(
                live, Trigger(1.0, last.close, TAKER, True), last
            )
            if filled_now:
                self._filled_on_arrival[order.order_id] = (filled_now, price)
                self._on_filled(live, filled_now, price)
            if not done:
                self._close(live, "not filled on close")
            return
        self._orders.rest(live)
        if order.oco_id is not None:
            self._link(live)
        if self._bar_subscription is not None:
            self._watch_bars()

    def on_cancel(self, command: CancelOrder) -> None:
        now = self._clock.now
        live = self._orders.get(command.order_id)
        if live is not None:
            self._remove(live)
            self._bus.publish(
                OrderCanceled(
                    order_id=command.order_id, reason="canceled", ts_event=now, ts_init=now
                )
            )
            self._orphan(live)
            return
        self._bus.publish(
            OrderCancelRejected(
                order_id=command.order_id,
                reason="no open order with this id",
                ts_event=now,
                ts_init=now,
            )
        )

    def on_modified(self, event: OrderModified) -> None:
        """Risk passed an amendment: the order rests on with its new prices or quantity."""
        live = self._orders.get(event.order.order_id)
        if live is None:
            return
        old = live.order
        live.order = event.order
        if event.order.quantity is not None and old.quantity is not None:
            filled = old.quantity - (live.remaining if live.remaining is not None else 0.0)
            live.remaining = event.order.quantity - filled
        live.wake = None

    def attach_ranges(
        self, symbol: str, low: np.ndarray, high: np.ndarray, ts: np.ndarray | None = None
    ) -> None:
        """Signal mode: the bar ranges that `next_wake` scans to find where resting orders trigger,
        and the bar times, where orders with an expiry time expire.

        The venue then takes every bar visited: signal mode visits few bars besides those where
        an order can fill, and on the others it has nothing to do, so pausing and resuming its
        subscription around each order would cost more than the calls it saves."""
        self._ranges[symbol] = (low, high)
        if ts is not None:
            self._times[symbol] = ts
        subscription = self._bar_subscription
        if subscription is not None:
            subscription.resume()
            self._bar_subscription = None

    def next_wake(self, after: int) -> int:
        """The first row after `after` on which some resting order can fill (or must expire), or a
        margin position's mark can reach its liquidation price; a large number when neither can
        happen. Bars before it cannot change anything here, so they may be skipped.

        While a cross position is open every row is needed: its buying power and liquidation price
        are computed from the mark this venue and the risk engine last saw (the liquidation price
        as the cross equity less the position's profit, which rounds differently at each mark),
        so skipping a bar would change which mark they read, and the result's last bits."""
        if self._exposed and self._cross:
            return after + 1
        if not self._orders.resting and not self._exposed:
            return NEVER  # nothing rests and nothing can be liquidated
        best = NEVER
        for book in self._books.values():
            for live in book:
                wake = live.wake
                if wake is None or wake <= after:
                    wake = live.wake = self._scan(live, after + 1)
                best = min(best, wake)
        if self._exposed:
            for symbol, position in self.account.positions.items():
                if position.quantity:
                    wake = self._liquidation_wake.get(symbol)
                    if wake is None or wake <= after:
                        wake = self._liquidation_wake[symbol] = self._scan_liquidation(
                            symbol, after + 1
                        )
                    best = min(best, wake)
        return best

    def _scan(self, live: LiveOrder, start: int) -> int:
        order = live.order
        if (
            order.time_in_force is IOC
            or order.time_in_force is FOK
            # A type that can fill on any bar (a market order) wakes on the next, expiring or not.
            or type(live.kind).wake is OrderKind.wake
        ):
            return start  # its first eligible bar decides
        low, high = self._ranges[order.instrument]
        wake = live.kind.wake(live, low, high, start)
        if live.expires is not None:
            times = self._times[order.instrument]
            wake = min(wake, int(np.searchsorted(times, live.expires, side="left")), len(times))
            wake = max(wake, start)
        return wake

    def cancel_all(self, reason: str) -> None:
        """End of data: every order still open gets its terminal answer."""
        for live in self._orders.open_orders():
            if not live.closed:
                self._orders.remove(live)
                self._close(live, reason)
        if self._bar_subscription is not None:
            self._bar_subscription.pause()

    # --- matching ------------------------------------------------------------------------------

    def _match(self, bar: Bar, book: list[LiveOrder]) -> None:
        ts = bar.ts_event
        if self._orders.timed:
            self._expire_due(book, ts)
        elif len(book) == 1 and self.single_lane:
            live = book[0]
            if not live.children and not (self._exposed and self._margin is not None):
                self._match_one(bar, live)
                return
        # Eligible: accepted by the time the bar opened (the clock runs on bar closes, adr/0020: an
        # order placed at one bar's close is accepted when the next bar opens). Usually all are:
        # a copy of the book, as matching takes orders out of it.
        eligible = book[:]
        for live in book:
            if live.accepted_ts > ts:
                eligible = [live for live in book if live.accepted_ts <= ts]
                break
        watching = self._exposed and self._margin is not None
        if not eligible:
            if watching and self.account.positions[bar.instrument].quantity:
                self._watch(bar, self._mark_path(bar), 0.0, END)
            return
        index = bar.index
        # Signal mode's bar ranges and times (a dense run has none).
        ranges = self._ranges.get(bar.instrument) if self._ranges else None
        times = self._times.get(bar.instrument) if self._times else None
        for live in eligible:
            self._catch_up(live, index, ranges, times)
        low_first = self._low_first(bar)
        path = bar_path(bar, low_first)
        # (live order, the path time it became live at on this bar): every eligible order from
        # the open. A comprehension: `zip` with its `strict` keyword costs four times as much.
        taking_part = [(live, 0.0) for live in eligible]
        hits = self._hits(eligible, path, 0.0)
        count = len(hits)
        decided = count > 1
        if decided:
            if bar.high != bar.low:
                self.path_decided_bars += 1
            hits.sort(key=_hit_order)
        mark_path = self._mark_path(bar) if watching else None
        elapsed = 0.0
        executed: list[LiveOrder] = []
        k = 0
        while k < count:
            time, _, live, hit = hits[k]
            k += 1
            if live.closed or (
                mark_path is not None and self._closed_by_watch(bar, mark_path, elapsed, time, live)
            ):
                continue  # canceled earlier on this bar (a liquidation, its other OCO leg)
            done, filled, price = self._execute(live, hit, bar)
            executed.append(live)
            if done and not live.closed:
                self._remove(live)
            elapsed = time
            if not filled:
                continue
            released = self._on_filled(live, filled, price) if live.children else _NONE
            if released:
                taking_part.extend([(child, time) for child in released])
            if (
                time == 0.0
                and self._pessimistic
                # Nothing reads the path again when the one order taking part is done on a
                # bar without a mark to watch.
                and (len(taking_part) > 1 or not done or mark_path is not None)
                and self._low_first(bar) != low_first
            ):
                # Still at the open: the position just changed, and with it the adverse extreme.
                low_first = not low_first
                path = bar_path(bar, low_first)
                if mark_path is not None:
                    mark_path = self._mark_path(bar)
                pending = (
                    [o for o, _ in taking_part if not o.closed and o not in executed]
                    if len(taking_part) > 1
                    else _NONE  # the one order taking part has just executed
                )
                later = self._hits(pending, path, 0.0) if pending else _NO_HITS
            elif released:
                later = [h for h in hits[k:] if not h[2].closed] + self._hits(released, path, time)
            else:
                continue
            if not later:
                count = k  # what is left of `hits` is dropped, as `hits[:k] + later` would
                continue
            if len(later) > 1:
                later.sort(key=_hit_order)
                if not decided and bar.high != bar.low:
                    decided = True
                    self.path_decided_bars += 1
            hits = hits[:k] + later
            count = len(hits)
        if mark_path is not None:
            self._watch(bar, mark_path, elapsed, END)
        for live, start in taking_part:
            if not live.closed:
                self._bar_done(live, path, start, index)

    def _catch_up(
        self,
        live: LiveOrder,
        index: int,
        ranges: tuple[np.ndarray, np.ndarray] | None,
        times: np.ndarray | None,
    ) -> None:
        """Before an order is matched on bar `index`: whether that bar is its first (unless signal
        mode skipped bars since it was accepted), or, for a type that tracks the bars, the range of
        those signal mode skipped since it last saw one (`ranges`, `times`: signal mode's)."""
        if live.seen < 0:
            live.fresh = times is None or index == 0 or times[index - 1] < live.accepted_ts
        elif ranges is not None and live.kind.tracks_bars and live.seen < index - 1:
            live.kind.skip(live, ranges[0], ranges[1], live.seen + 1, index)

    def _bar_done(self, live: LiveOrder, path: Path, start: float, index: int) -> None:
        """An order still open after a bar's matching: its type settles the bar (from `start`, the
        path time it became live at), and an immediate-or-cancel or fill-or-kill order expires."""
        live.kind.settle(live, path, start)
        live.fresh = False
        live.seen = index
        tif = live.order.time_in_force
        if tif is IOC or tif is FOK:
            self._remove(live)
            now = self._clock.now
            self._bus.publish(OrderExpired(order_id=live.order.order_id, ts_event=now, ts_init=now))
            self._orphan(live)

    def _match_one(self, bar: Bar, live: LiveOrder) -> None:
        """`_match` of a book holding one order whose fill releases nothing, on a bar without a
        mark to watch (most bars an order fills on): the same steps on the one order, without the
        lists that order several (`tests/property/test_venue_single_lane.py` pins it to them)."""
        if live.accepted_ts > bar.ts_event:
            return  # not eligible yet
        index = bar.index
        self._catch_up(
            live,
            index,
            self._ranges.get(bar.instrument) if self._ranges else None,
            self._times.get(bar.instrument) if self._times else None,
        )
        low_first = self._low_first(bar)
        path = bar_path(bar, low_first)
        hit = live.kind.trigger(live, path, 0.0)
        if hit is not None:
            done, filled, _ = self._execute(live, hit, bar)
            if done and not live.closed:
                self._remove(live)
            if (
                filled
                and not done
                and hit.time == 0.0
                and self._pessimistic
                and self._low_first(bar) != low_first
            ):
                # Still at the open with the order left on the book: the position changed, and
                # with it the adverse extreme the rest of the bar is read by.
                path = bar_path(bar, not low_first)
        if not live.closed:
            self._bar_done(live, path, 0.0, index)

    def _hits(
        self, lives: list[LiveOrder], path: Path, start: float
    ) -> list[tuple[float, int, LiveOrder, Trigger]]:
        hits = []
        for live in lives:
            hit = live.kind.trigger(live, path, start)
            if hit is not None:
                hits.append((hit.time, live.seq, live, hit))
        return hits

    def _expire_due(self, book: list[LiveOrder], ts: int) -> None:
        """Expire, before the bar opening at `ts` matches, the orders whose time has come by then:
        stamped with that open (the clock is already at the bar's close, adr/0020)."""
        for live in list(book):
            if live.expires is not None and live.expires <= ts:
                self._remove(live)
                self._bus.publish(
                    OrderExpired(
                        order_id=live.order.order_id,
                        ts_event=ts,
                        ts_init=self._clock.now,
                        reason=f"{live.order.time_in_force.value} expiry",
                    )
                )
                self._orphan(live)

    def _low_first(self, bar: Bar) -> bool:
        """Which extreme the bar's path visits first: the one adverse to the position held
        (pessimistic: a long sees the low first, a short or flat account the high), the favorable one
        (optimistic), or as the bar's direction suggests (ohlc: an up bar dips first)."""
        if self._pessimistic:
            return self.account.positions[bar.instrument].quantity > 0.0
        if self._optimistic:
            return self.account.positions[bar.instrument].quantity < 0.0
        return bar.close >= bar.open

    def _execute(self, live: LiveOrder, hit: Trigger, bar: Bar) -> tuple[bool, float, float]:
        """Fill as much of `live` as the bar, the slippage model, the account and the order's own
        flags allow. Returns whether the order is done (filled, or its remainder closed), the
        quantity filled and the price."""
        order = live.order
        if order.post_only and hit.liquidity is TAKER:
            self._close(live, "post-only order would take liquidity")
            return True, 0.0, 0.0
        symbol = order.instrument
        instrument = self._instruments[symbol]
        buy = order.side is BUY
        price = hit.price
        sized_now = live.remaining is None
        # Read once: nothing below books until the fill (the sizing reads it too).
        reducible = self.account.reducible(symbol, buy)
        remaining = (
            self._size_fraction(order, instrument, price, hit.liquidity, reducible)
            if live.remaining is None
            else live.remaining
        )
        if remaining <= 0.0:
            self._close(live, "order sized to zero at fill")
            return True, 0.0, 0.0
        capacity = self._capacity(bar) if self._bounded else math.inf
        # A partial fill stays on the lot grid, or the position would carry dust no sell could clear.
        quantity = remaining if remaining <= capacity else instrument.floor_quantity(capacity)
        if quantity <= 0.0:
            # Nothing fills on this bar: a fraction order stays unsized until the bar where it fills.
            return False, 0.0, 0.0
        if hit.slips and not (
            # `_slipped` would return the three as they are: no model to move the price, no
            # limit to keep it within and no tick grid to round it to.
            self._no_slippage and hit.limit is None and instrument.tick_size is None
        ):
            price, remaining, quantity = self._slipped(
                order, instrument, hit, bar, remaining, quantity, sized_now, reducible
            )
        live.remaining = remaining
        if order.reduce_only:
            if reducible <= 0.0:
                self._close(live, "reduce-only order: no position to reduce")
                return True, 0.0, 0.0
            quantity = min(quantity, reducible)
        # A spot fraction sized just now at this price is affordable by construction, and opens
        # exposure only where the account allows it (`_size_fraction` sized it from the buying
        # power, asked only with nothing to reduce and no refusal): nothing to cap.
        quantity, shortfall = (
            (quantity, "")
            if sized_now and self._margin is None
            else self._cap(order, instrument, quantity, reducible, price, hit.liquidity)
        )
        if quantity <= 0.0:
            self._close(live, shortfall or "order sized to zero at fill")
            return True, 0.0, 0.0
        if order.time_in_force is FOK and quantity < remaining:
            self._expire(live, f"fill or kill: only {quantity:.8g} of {remaining:.8g} could fill")
            return True, 0.0, 0.0
        # Subtracting partial fills accumulates float error; a remainder made only of it is none.
        leaves = instrument.round_quantity(remaining - quantity)
        if leaves <= remaining * 1e-12 or (order.reduce_only and quantity == reducible):
            leaves = 0.0
        if leaves == 0.0 and (order.fraction == 1.0 or order.reduce_only) and reducible > 0.0:
            # Closing takes exactly what is held, so no float dust of a position outlives it.
            quantity = min(reducible, remaining) if order.reduce_only else reducible
        fee = self._fees.fee(quantity * price * instrument.contract_size, hit.liquidity)
        if capacity != math.inf:
            self._use_volume(bar, quantity)
        live.remaining = leaves
        self._fill_order(live, quantity, price, fee, hit.liquidity, leaves, bar.ts_event)
        if leaves > 0.0 and shortfall:
            self._close(live, shortfall)
            return True, quantity, price
        return leaves == 0.0, quantity, price

    def _fill_order(
        self,
        live: LiveOrder,
        quantity: float,
        price: float,
        fee: float,
        liquidity: Liquidity,
        leaves: float,
        ts_event: int,
    ) -> None:
        """`ts_event`: the open time of the bar it executes on, its label (adr/0020)."""
        order = live.order
        symbol = order.instrument
        held = self.account.positions[symbol].quantity
        # Positional, in OrderFilled's field order (order_id, instrument, side, price, quantity,
        # fee, liquidity, leaves_quantity, ts_event, ts_init).
        fill = OrderFilled(
            order.order_id,
            symbol,
            order.side,
            price,
            quantity,
            fee,
            liquidity,
            leaves,
            ts_event,
            self._clock.now,
        )
        self._book(fill)
        self._publish(fill)
        if live.oco:
            self._cancel_others(live)
        after = self.account.positions[symbol].quantity
        if held and (after == 0.0 or (after > 0.0) != (held > 0.0)):
            book = self._books[symbol]
            # Only other orders of the instrument can be exits to void (the one filling is
            # often all its book holds).
            if len(book) > 1 or (book and book[0] is not live):
                self._position_closed(symbol, live)


_NONE: list[LiveOrder] = []  # never appended to
_NO_HITS: list[tuple[float, int, LiveOrder, Trigger]] = []  # never appended to


def _hit_order(hit: tuple[float, int, LiveOrder, Trigger]) -> tuple[float, int]:
    return hit[0], hit[1]
