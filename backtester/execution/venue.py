"""The simulated venue: holds accepted orders, fills them against later bars, answers cancels, books
funding, liquidates and settles positions.

Like a real exchange it keeps its own account (`accounting`): it sizes fraction orders at the fill
price, caps a fill at what the account can pay for and hold (spot: no negative cash, no short), and,
on a margin account, charges funding and liquidates a position whose mark reaches its liquidation
price along the bar's path. The client-side ledger (`account`) books the same fills from events; a
test checks that both agree.
"""

from __future__ import annotations

import math
import sys

import msgspec
import numpy as np

from backtester.accounting.accounts import Account, MarginAccount
from backtester.config import FillConfig, IntrabarPath
from backtester.core.bus import MessageBus, Subscription
from backtester.core.clock import SimClock
from backtester.domain.enums import BUY, FOK, IOC, MARKET, SELL, TAKER, Liquidity
from backtester.domain.instrument import Instrument
from backtester.domain.marks import MarkBars
from backtester.domain.messages import (
    Bar,
    CancelOrder,
    ContractExpired,
    FundingPaid,
    FundingRate,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderReleased,
    PositionLiquidated,
    PositionSettled,
    SubmitOrder,
)
from backtester.domain.models import FeeModel, SlippageModel
from backtester.execution.book import OrderBook, expiry_of
from backtester.orders import END, LiveOrder, Path, Trigger, bar_path, first_reach, kind_of, touch

NEVER = sys.maxsize
LIQUIDATION_TAG = "liquidation"
SETTLEMENT_TAG = "settlement"


class SimulatedVenue:
    def __init__(
        self,
        bus: MessageBus,
        clock: SimClock,
        instruments: dict[str, Instrument],
        fees: FeeModel,
        slippage: SlippageModel,
        fill: FillConfig,
        rng: np.random.Generator,
        account: Account,
        marks: dict[str, MarkBars],
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._instruments = instruments
        self._fees = fees
        self._slippage = slippage
        self._fill = fill
        self._pessimistic = fill.intrabar is IntrabarPath.PESSIMISTIC
        self._optimistic = fill.intrabar is IntrabarPath.OPTIMISTIC
        self._rng = rng
        self.account = account
        self._margin = account if isinstance(account, MarginAccount) else None
        self._marks = marks
        # Per-bar reads of the marks, as lists (an item of a list is cheaper than of an array).
        self._mark_lists: dict[str, tuple[list[float], ...]] = {}
        # The mark known now: while a bar is matched its open, after it its close (the last bar
        # seen for every other instrument; a margin account watches every bar while exposed).
        self._marks_now: dict[str, float] = {s: float(m.open[0]) for s, m in marks.items()}
        # Only cross positions' margin depends on marks: an isolated-only account need not track them.
        self._cross = account.marks_matter
        # Liquidation prices, until a booking or a funding payment moves them (cross positions of
        # several instruments move each other's with every mark: those are not kept).
        self._levels: dict[str, float] = {}
        # Per instrument, what a bar must reach to need a look at its path: the mark lows (long) or
        # highs (short) and the liquidation price; empty while flat.
        self._guards: dict[str, tuple[list[float], float, bool] | tuple[()]] = {}
        self._orders = OrderBook(list(instruments))
        self._books = self._orders.books
        self._last_bar: dict[str, Bar] = {}
        self._bar_volume_used: dict[str, tuple[int, float]] = {}
        # Margin positions open: while any is, every bar is watched for liquidation.
        self._exposed = 0
        self._liquidation_wake: dict[str, int | None] = {}
        self._expired: set[str] = set()
        self._bar_subscription: Subscription | None = None
        self._ranges: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._times: dict[str, np.ndarray] = {}
        # Orders that filled on arrival (trade_on_close), for the linked orders right behind them.
        self._filled_on_arrival: dict[int, tuple[float, float]] = {}
        self._seq = 0
        self._venue_orders = 0
        self.path_decided_bars = 0
        self.liquidations = 0

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

    # --- the venue's own balances, as the account holds them -----------------------------------

    @property
    def cash(self) -> float:
        return self.account.cash

    @property
    def positions(self) -> dict[str, float]:
        return {symbol: p.quantity for symbol, p in self.account.positions.items()}

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
        kind = kind_of(order.order_type)
        live = LiveOrder(order, kind, self._seq, now)
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
        self._filled_on_arrival.clear()
        kind.start(live, order.ref_price)
        last = self._last_bar.get(order.instrument)
        if self._fill.trade_on_close and kind.immediate and last is not None:
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
        self._link(live)
        self._watch_bars()

    def _link(self, live: LiveOrder) -> None:
        """Join the order to its one-cancels-other group and to the parent that releases it."""
        order = live.order
        if order.oco_id is not None:
            for other in self._orders.open_orders():
                if other is not live and other.order.oco_id == order.oco_id:
                    other.oco.append(live)
                    live.oco.append(other)
        if order.parent_id is not None:
            parent = self._orders.get(order.parent_id)
            if parent is not None:
                parent.children.append(live)

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

    def on_funding(self, event: FundingRate) -> None:
        """Charge or pay the funding on an open position: `rate * quantity * size * mark`."""
        symbol = event.instrument
        held = self.account.positions[symbol].quantity
        if not held:
            return
        size = self._instruments[symbol].contract_size
        amount = event.rate * held * size * event.mark_price
        self.account.apply_funding(symbol, amount)
        self._liquidation_wake[symbol] = None
        self._levels.clear()
        self._guards.clear()
        self._bus.publish(
            FundingPaid(
                instrument=symbol,
                rate=event.rate,
                mark_price=event.mark_price,
                quantity=held,
                amount=amount,
                ts_event=event.ts_event,
                ts_init=self._clock.now,
            )
        )

    def on_expired(self, event: ContractExpired) -> None:
        """A future's expiry: its orders are canceled and its position settles at the last mark."""
        symbol = event.instrument
        self._expired.add(symbol)
        self._close_all(symbol, "contract expired")
        held = self.account.positions[symbol].quantity
        if held:
            order = self._venue_order(symbol, held, event.settlement_price, SETTLEMENT_TAG)
            now = self._clock.now
            self._bus.publish(
                PositionSettled(
                    order=order,
                    settlement_price=event.settlement_price,
                    ts_event=event.ts_event,
                    ts_init=now,
                )
            )
            self._book_and_publish(order, event.settlement_price, 0.0, TAKER)

    def attach_ranges(
        self, symbol: str, low: np.ndarray, high: np.ndarray, ts: np.ndarray | None = None
    ) -> None:
        """Signal mode: the bar ranges that `next_wake` scans to find where resting orders trigger,
        and the bar times, where orders with an expiry time expire."""
        self._ranges[symbol] = (low, high)
        if ts is not None:
            self._times[symbol] = ts

    def next_wake(self, after: int) -> int:
        """The first row after `after` on which some resting order can fill (or must expire), or a
        margin position's mark can reach its liquidation price; a large number when neither can
        happen. Bars before it cannot change anything here, so they may be skipped."""
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
        if order.time_in_force is IOC or order.time_in_force is FOK:
            return start  # its first eligible bar decides
        low, high = self._ranges[order.instrument]
        wake = live.kind.wake(live, low, high, start)
        if live.expires is not None:
            times = self._times[order.instrument]
            wake = min(wake, int(np.searchsorted(times, live.expires, side="left")), len(times))
            wake = max(wake, start)
        return wake

    def _scan_liquidation(self, symbol: str, start: int) -> int:
        assert self._margin is not None
        price = self._level(symbol)
        assert price is not None
        marks = self._marks[symbol]
        long = self.account.positions[symbol].quantity > 0.0
        return first_reach(marks.low if long else marks.high, price, long, start)

    def cancel_all(self, reason: str) -> None:
        """End of data: every order still open gets its terminal answer."""
        for live in self._orders.open_orders():
            if not live.closed:
                self._orders.remove(live)
                self._close(live, reason)
        if self._bar_subscription is not None:
            self._bar_subscription.pause()

    def _close_all(self, symbol: str, reason: str) -> None:
        for live in self._orders.open_orders():
            if live.order.instrument == symbol and not live.closed:
                self._remove(live)
                self._close(live, reason)

    # --- matching ------------------------------------------------------------------------------

    def _match(self, bar: Bar, book: list[LiveOrder]) -> None:
        ts = bar.ts_event
        if self._orders.timed:
            self._expire_due(book, ts)
        # Eligible: accepted by the time the bar opened (the clock runs on bar closes, adr/0020: an
        # order placed at one bar's close is accepted when the next bar opens).
        eligible = [live for live in book if live.accepted_ts <= ts]
        watching = self._exposed and self._margin is not None
        if not eligible:
            if watching and self.account.positions[bar.instrument].quantity:
                self._watch(bar, self._mark_path(bar), 0.0, END)
            return
        index = bar.index
        ranges = self._ranges.get(bar.instrument)
        times = self._times.get(bar.instrument)
        for live in eligible:
            if live.seen < 0:
                # Its first bar, unless signal mode skipped bars since it was accepted.
                live.fresh = times is None or index == 0 or times[index - 1] < live.accepted_ts
            elif ranges is not None and live.kind.tracks_bars and live.seen < index - 1:
                live.kind.skip(live, ranges[0], ranges[1], live.seen + 1, index)
        low_first = self._low_first(bar)
        path = bar_path(bar, low_first)
        # (live order, the path time it became live at on this bar)
        taking_part = [(live, 0.0) for live in eligible]
        hits = self._hits(eligible, path, 0.0)
        decided = len(hits) > 1
        if decided:
            if bar.high != bar.low:
                self.path_decided_bars += 1
            hits.sort(key=_hit_order)
        mark_path = self._mark_path(bar) if watching else None
        elapsed = 0.0
        executed: list[LiveOrder] = []
        k = 0
        while k < len(hits):
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
            released = self._on_filled(live, filled, price)
            taking_part.extend((child, time) for child in released)
            if time == 0.0 and self._pessimistic and self._low_first(bar) != low_first:
                # Still at the open: the position just changed, and with it the adverse extreme.
                low_first = not low_first
                path = bar_path(bar, low_first)
                if mark_path is not None:
                    mark_path = self._mark_path(bar)
                pending = [o for o, _ in taking_part if not o.closed and o not in executed]
                later = self._hits(pending, path, 0.0)
            elif released:
                later = [h for h in hits[k:] if not h[2].closed] + self._hits(released, path, time)
            else:
                continue
            if len(later) > 1:
                later.sort(key=_hit_order)
                if not decided and bar.high != bar.low:
                    decided = True
                    self.path_decided_bars += 1
            hits = hits[:k] + later
        if mark_path is not None:
            self._watch(bar, mark_path, elapsed, END)
        for live, start in taking_part:
            if live.closed:
                continue
            live.kind.settle(live, path, start)
            live.fresh = False
            live.seen = index
            tif = live.order.time_in_force
            if tif is IOC or tif is FOK:
                self._remove(live)
                now = self._clock.now
                self._bus.publish(
                    OrderExpired(order_id=live.order.order_id, ts_event=now, ts_init=now)
                )
                self._orphan(live)

    def _closed_by_watch(
        self, bar: Bar, mark_path: Path, start: float, until: float, live: LiveOrder
    ) -> bool:
        """Watch for liquidation up to the order's hit; whether that closed the order."""
        self._watch(bar, mark_path, start, until)
        return live.closed

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

    def _on_filled(self, live: LiveOrder, filled: float, price: float) -> list[LiveOrder]:
        """After a fill of `live`: the orders it releases go live at `price` (returned), or grow
        by what it filled."""
        if not live.children:
            return []
        released = self._release(live.order.order_id, price)
        for child in live.children:
            if not child.closed:
                child.remaining = (child.remaining or 0.0) + filled
        self._announce(released)
        return released

    def _release(self, parent_id: int, price: float) -> list[LiveOrder]:
        """The orders waiting for `parent_id`, live now, priced from its fill at `price`."""
        released = []
        for child in self._orders.waiting_for(parent_id):
            child.order = _released(child.order, price, self._instruments[child.order.instrument])
            child.remaining = 0.0
            child.kind.start(child, price)
            # Live from this moment on the parent's bar, marketable or not: eligible at once.
            child.accepted_ts = -1
            child.fresh = True
            self._orders.rest(child)
            released.append(child)
        return released

    def _announce(self, released: list[LiveOrder]) -> None:
        now = self._clock.now
        for child in released:
            self._bus.publish(
                OrderReleased(
                    order=msgspec.structs.replace(
                        child.order, quantity=child.remaining, fraction=None
                    ),
                    ts_event=now,
                    ts_init=now,
                )
            )
        if released:
            self._watch_bars()

    def _orphan(self, live: LiveOrder) -> None:
        """An order closed before any fill: the orders its fill would have released go too."""
        now = self._clock.now
        for child in self._orders.waiting_for(live.order.order_id):
            child.closed = True
            self._orders.remove(child)
            self._bus.publish(
                OrderCanceled(
                    order_id=child.order.order_id,
                    reason=f"parent order {live.order.order_id} closed unfilled",
                    ts_event=now,
                    ts_init=now,
                )
            )

    def _position_closed(self, symbol: str, filling: LiveOrder) -> None:
        """The position went flat or flipped: the exits that its entries released are void."""
        now = self._clock.now
        for live in list(self._books[symbol]):
            if live is not filling and live.order.parent_id is not None and not live.closed:
                self._remove(live)
                self._bus.publish(
                    OrderCanceled(
                        order_id=live.order.order_id,
                        reason="position closed",
                        ts_event=now,
                        ts_init=now,
                    )
                )

    def _remove(self, live: LiveOrder) -> None:
        self._orders.remove(live)
        self._watch_bars()

    def _watch_bars(self) -> None:
        """Be called for bars exactly while something can happen on one."""
        subscription = self._bar_subscription
        if subscription is None:
            return
        if self._orders.resting or self._exposed:
            subscription.resume()
        else:
            subscription.pause()

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
        remaining = (
            self._size_fraction(order, instrument, price, hit.liquidity)
            if live.remaining is None
            else live.remaining
        )
        if remaining <= 0.0:
            self._close(live, "order sized to zero at fill")
            return True, 0.0, 0.0
        capacity = self._capacity(bar)
        # A partial fill stays on the lot grid, or the position would carry dust no sell could clear.
        quantity = remaining if remaining <= capacity else instrument.floor_quantity(capacity)
        if quantity <= 0.0:
            # Nothing fills on this bar: a fraction order stays unsized until the bar where it fills.
            return False, 0.0, 0.0
        if hit.slips:
            price, remaining, quantity = self._slipped(
                order, instrument, hit, bar, remaining, quantity, sized_now
            )
        live.remaining = remaining
        reducible = self.account.reducible(symbol, buy)
        if order.reduce_only:
            if reducible <= 0.0:
                self._close(live, "reduce-only order: no position to reduce")
                return True, 0.0, 0.0
            quantity = min(quantity, reducible)
        quantity, shortfall = self._cap(
            order, instrument, quantity, reducible, price, hit.liquidity, sized_now
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

    def _slipped(
        self,
        order: SubmitOrder,
        instrument: Instrument,
        hit: Trigger,
        bar: Bar,
        remaining: float,
        quantity: float,
        sized_now: bool,
    ) -> tuple[float, float, float]:
        """The taker's price after slippage (no worse than a limit it has), and the fraction order
        sized again at it."""
        price = instrument.round_price(
            self._slippage.fill_price(order.side, hit.price, quantity, bar, self._rng)
        )
        buy = order.side is BUY
        if hit.limit is not None:
            price = min(price, hit.limit) if buy else max(price, hit.limit)
        if sized_now and buy and price != hit.price:
            # Size the cash fraction at the price actually paid, not the pre-slippage one.
            remaining = self._size_fraction(order, instrument, price, hit.liquidity)
            quantity = min(remaining, quantity)
        return price, remaining, quantity

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
        self._book(symbol, order.side is BUY, quantity, price, fee)
        self._bus.publish(
            OrderFilled(
                order_id=order.order_id,
                instrument=symbol,
                side=order.side,
                price=price,
                quantity=quantity,
                fee=fee,
                liquidity=liquidity,
                leaves_quantity=leaves,
                ts_event=ts_event,
                ts_init=self._clock.now,
            )
        )
        if live.oco:
            self._cancel_others(live)
        after = self.account.positions[symbol].quantity
        if held and (after == 0.0 or (after > 0.0) != (held > 0.0)):
            self._position_closed(symbol, live)

    def _cancel_others(self, live: LiveOrder) -> None:
        """One leg of a one-cancels-other group filled, even partly: the others go at once."""
        now = self._clock.now
        for other in live.oco:
            if not other.closed:
                self._remove(other)
                self._bus.publish(
                    OrderCanceled(
                        order_id=other.order.order_id,
                        reason=f"one-cancels-other: order {live.order.order_id} filled",
                        ts_event=now,
                        ts_init=now,
                    )
                )
                self._orphan(other)
        live.oco = []

    def _cap(
        self,
        order: SubmitOrder,
        instrument: Instrument,
        quantity: float,
        reducible: float,
        price: float,
        liquidity: Liquidity,
        sized_now: bool,
    ) -> tuple[float, str]:
        """The quantity the account allows, and the reason when it is less than asked."""
        symbol = order.instrument
        opening = quantity - reducible if quantity > reducible else 0.0
        if opening <= 0.0:
            return quantity, ""
        account = self.account
        if account.opening_refusal(symbol, order.side is BUY) is not None:
            # Spot: a sell can only take what is held.
            return reducible, "insufficient position at fill"
        if sized_now and self._margin is None:
            # A spot fraction sized just now at this price is affordable by construction.
            return quantity, ""
        affordable = account.affordable(
            symbol,
            price,
            account.buying_power(self._marks_now),
            lambda notional: self._fees.fee(notional, liquidity),
        )
        if affordable >= opening:
            return quantity, ""
        reason = "insufficient margin at fill" if self._margin else "insufficient cash at fill"
        return reducible + affordable, reason

    def _size_fraction(
        self, order: SubmitOrder, instrument: Instrument, price: float, liquidity: Liquidity
    ) -> float:
        """A fraction of the position when the order reduces it (all of it is exactly what is held:
        flooring a float sum of lots could leave one behind), else of the buying power."""
        assert order.fraction is not None
        account = self.account
        symbol = order.instrument
        reducible = account.reducible(symbol, order.side is BUY)
        if reducible > 0.0:
            return (
                reducible
                if order.fraction == 1.0
                else instrument.floor_quantity(order.fraction * reducible)
            )
        if account.opening_refusal(symbol, order.side is BUY) is not None:
            return 0.0
        return account.affordable(
            symbol,
            price,
            order.fraction * account.buying_power(self._marks_now),
            lambda notional: self._fees.fee(notional, liquidity),
        )

    def _capacity(self, bar: Bar) -> float:
        used = self._bar_volume_used.get(bar.instrument)
        already = used[1] if used is not None and used[0] == bar.index else 0.0
        return self._slippage.capacity(bar, already)

    def _use_volume(self, bar: Bar, quantity: float) -> None:
        used = self._bar_volume_used.get(bar.instrument)
        already = used[1] if used is not None and used[0] == bar.index else 0.0
        self._bar_volume_used[bar.instrument] = (bar.index, already + quantity)

    def _close(self, live: LiveOrder, reason: str) -> None:
        now = self._clock.now
        self._bus.publish(
            OrderCanceled(order_id=live.order.order_id, reason=reason, ts_event=now, ts_init=now)
        )
        if not live.closed:
            self._remove(live)
        self._orphan(live)

    def _expire(self, live: LiveOrder, reason: str) -> None:
        now = self._clock.now
        self._bus.publish(
            OrderExpired(order_id=live.order.order_id, ts_event=now, ts_init=now, reason=reason)
        )
        if not live.closed:
            self._remove(live)
        self._orphan(live)

    # --- the account: booking, marks, liquidation ------------------------------------------------

    def _book(self, symbol: str, buy: bool, quantity: float, price: float, fee: float) -> None:
        position = self.account.positions[symbol]
        was_open = position.quantity != 0.0
        self.account.book_fill(symbol, buy, quantity, price, fee)
        if self._margin is not None:
            self._liquidation_wake[symbol] = None
            self._levels.clear()
            self._guards.clear()
            is_open = position.quantity != 0.0
            if is_open != was_open:
                self._exposed += 1 if is_open else -1
                self._watch_bars()

    def _lists(self, symbol: str) -> tuple[list[float], ...]:
        lists = self._mark_lists.get(symbol)
        if lists is None:
            lists = self._mark_lists[symbol] = tuple(
                column.tolist() for column in self._marks[symbol]
            )
        return lists

    def _mark_path(self, bar: Bar) -> Path:
        o, h, low, c = self._lists(bar.instrument)
        i = bar.index
        if self._pessimistic:
            low_first = self.account.positions[bar.instrument].quantity > 0.0
        else:
            low_first = c[i] >= o[i]
        if low_first:
            return (o[i], low[i], h[i], c[i])
        return (o[i], h[i], low[i], c[i])

    def _guard(self, symbol: str) -> tuple[list[float], float, bool] | tuple[()]:
        held = self.account.positions[symbol].quantity
        guard: tuple[list[float], float, bool] | tuple[()] = ()
        if held:
            level = self._level(symbol)
            _, highs, lows, _ = self._lists(symbol)
            guard = (lows, level, True) if held > 0.0 else (highs, level, False)
            if symbol not in self._levels:
                return guard  # a level that moves with other marks is not kept
        self._guards[symbol] = guard
        return guard

    def _level(self, symbol: str) -> float:
        """The open position's liquidation price at the marks known now."""
        level = self._levels.get(symbol)
        if level is None:
            margin = self._margin
            assert margin is not None
            computed = margin.liquidation_price(symbol, self._marks_now)
            assert computed is not None
            level = computed
            crossed = sum(
                1 for s, p in margin.positions.items() if p.quantity and not margin.is_isolated(s)
            )
            if crossed < 2:
                self._levels[symbol] = level
        return level

    def _watch(self, bar: Bar, mark_path: Path, start: float, until: float) -> None:
        """Liquidate the bar's instrument if its mark reaches the liquidation price between path
        times `start` and `until`."""
        margin = self._margin
        symbol = bar.instrument
        position = self.account.positions[symbol]
        if margin is None or not position.quantity:
            return
        level = self._level(symbol)
        long = position.quantity > 0.0
        reached = touch(mark_path, level, below=long, start=start)
        if reached is None or reached[0] > until:
            return
        self._liquidate(symbol, level, reached[1], bar.ts_event)

    def _liquidate(self, symbol: str, level: float, mark: float, ts_event: int) -> None:
        """Close the position at the mark where its liquidation price was reached (cross: every
        cross position, the others at their marks), charging the liquidation fee from what margin
        is left: no position loses more than the margin backing it (a fill past the bankruptcy
        price is taken at it, as the exchange's insurance fund would)."""
        margin = self._margin
        assert margin is not None
        marks = dict(self._marks_now)
        position = margin.positions[symbol]
        size = abs(position.quantity) * position.instrument.contract_size
        long = position.quantity > 0.0
        if margin.is_isolated(symbol):
            victims = [symbol]
            backing = position.margin
        else:
            victims = [
                s for s, p in margin.positions.items() if p.quantity and not margin.is_isolated(s)
            ]
            backing = margin.cross_equity(marks) - position.unrealized_pnl(marks[symbol])
        # The bankruptcy price: where the position's loss takes all of what backs it.
        bankrupt = position.avg_price + (-backing if long else backing) / size
        marks[symbol] = max(mark, bankrupt) if long else min(mark, bankrupt)
        left = (
            position.margin + position.unrealized_pnl(marks[symbol])
            if margin.is_isolated(symbol)
            else margin.cross_equity(marks)
        )
        for victim in victims:
            held = margin.positions[victim]
            instrument = held.instrument
            price = marks[victim]
            fee = min(
                instrument.liquidation_fee * abs(held.quantity) * instrument.contract_size * price,
                max(left, 0.0),
            )
            left -= fee
            order = self._venue_order(victim, held.quantity, price, LIQUIDATION_TAG)
            now = self._clock.now
            self._bus.publish(
                PositionLiquidated(
                    order=order,
                    liquidation_price=level if victim == symbol else price,
                    mark_price=price,
                    ts_event=now,
                    ts_init=now,
                )
            )
            self.liquidations += 1
            self._close_all(victim, "position liquidated")
            self._book_and_publish(order, price, fee, TAKER, ts_event)

    def _venue_order(self, symbol: str, held: float, price: float, tag: str) -> SubmitOrder:
        """A market order the venue issues to close a position (ids -1, -2, ...)."""
        self._venue_orders += 1
        return SubmitOrder(
            order_id=-self._venue_orders,
            instrument=symbol,
            side=SELL if held > 0.0 else BUY,
            order_type=MARKET,
            ts_init=self._clock.now,
            ref_price=price,
            quantity=abs(held),
            tag=tag,
        )

    def _book_and_publish(
        self,
        order: SubmitOrder,
        price: float,
        fee: float,
        liquidity: Liquidity,
        ts_event: int | None = None,
    ) -> None:
        """`ts_event`: the open time of the bar it executes on (default: now, a scheduled event's)."""
        assert order.quantity is not None
        self._book(order.instrument, order.side is BUY, order.quantity, price, fee)
        now = self._clock.now
        self._bus.publish(
            OrderFilled(
                order_id=order.order_id,
                instrument=order.instrument,
                side=order.side,
                price=price,
                quantity=order.quantity,
                fee=fee,
                liquidity=liquidity,
                leaves_quantity=0.0,
                ts_event=now if ts_event is None else ts_event,
                ts_init=now,
            )
        )


def _hit_order(hit: tuple[float, int, LiveOrder, Trigger]) -> tuple[float, int]:
    return hit[0], hit[1]


def _released(order: SubmitOrder, price: float, instrument: Instrument) -> SubmitOrder:
    """A linked order's prices set from its parent's fill price (where they are relative to it)."""
    changes: dict[str, float] = {}
    if order.stop_offset_pct is not None:
        changes["stop_price"] = instrument.round_price(
            price * (1.0 + order.stop_offset_pct / 100.0)
        )
    if order.limit_offset_pct is not None:
        changes["limit_price"] = instrument.round_price(
            price * (1.0 + order.limit_offset_pct / 100.0)
        )
    return msgspec.structs.replace(order, **changes) if changes else order
