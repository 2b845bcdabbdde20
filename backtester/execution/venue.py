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

import numpy as np

from backtester.accounting.accounts import Account, MarginAccount
from backtester.config import FillConfig, IntrabarPath
from backtester.core.bus import MessageBus, Subscription
from backtester.core.clock import SimClock
from backtester.domain.enums import BUY, IOC, LIMIT, MARKET, SELL, STOP_LIMIT, TAKER, Liquidity
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
    PositionLiquidated,
    PositionSettled,
    SubmitOrder,
)
from backtester.domain.models import FeeModel, SlippageModel
from backtester.execution.matching import (
    Path,
    Trigger,
    bar_path,
    first_reach,
    stop_reached,
    touch,
    trigger,
)

NEVER = sys.maxsize
LIQUIDATION_TAG = "liquidation"
SETTLEMENT_TAG = "settlement"


class _Resting:
    __slots__ = ("accepted_ts", "armed", "order", "remaining", "seq", "wake")

    def __init__(self, order: SubmitOrder, seq: int, accepted_ts: int) -> None:
        self.order = order
        self.seq = seq
        self.accepted_ts = accepted_ts
        # A stop-limit whose stop has been reached: a limit order from then on.
        self.armed = False
        # Signal mode: the next row whose range can trigger this order (None: not scanned yet).
        self.wake: int | None = None
        # None until a fraction order is sized at its first fill.
        self.remaining: float | None = order.quantity


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
        self._books: dict[str, list[_Resting]] = {symbol: [] for symbol in instruments}
        self._last_bar: dict[str, Bar] = {}
        self._bar_volume_used: dict[str, tuple[int, float]] = {}
        self._resting = 0
        # Margin positions open: while any is, every bar is watched for liquidation.
        self._exposed = 0
        self._liquidation_wake: dict[str, int | None] = {}
        self._expired: set[str] = set()
        self._bar_subscription: Subscription | None = None
        self._ranges: dict[str, tuple[np.ndarray, np.ndarray]] = {}
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
                    self._watch(bar, self._mark_path(bar), 0.0, 3.0)
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
        resting = _Resting(order, self._seq, self._clock.now)
        last = self._last_bar.get(order.instrument)
        if self._fill.trade_on_close and order.order_type is MARKET and last is not None:
            if not self._execute(resting, Trigger(1.0, last.close, TAKER, True), last):
                self._close(resting, "not filled on close")
            return
        self._books[order.instrument].append(resting)
        self._resting += 1
        self._watch_bars()

    def on_cancel(self, command: CancelOrder) -> None:
        now = self._clock.now
        for book in self._books.values():
            for resting in book:
                if resting.order.order_id == command.order_id:
                    self._remove(book, resting)
                    self._bus.publish(
                        OrderCanceled(
                            order_id=command.order_id, reason="canceled", ts_event=now, ts_init=now
                        )
                    )
                    return
        self._bus.publish(
            OrderCancelRejected(
                order_id=command.order_id,
                reason="no open order with this id",
                ts_event=now,
                ts_init=now,
            )
        )

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
        book = self._books[symbol]
        for resting in list(book):
            self._remove(book, resting)
            self._close(resting, "contract expired")
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

    def attach_ranges(self, symbol: str, low: np.ndarray, high: np.ndarray) -> None:
        """Signal mode: the bar ranges that `next_wake` scans to find where resting orders trigger."""
        self._ranges[symbol] = (low, high)

    def next_wake(self, after: int) -> int:
        """The first row after `after` on which some resting order can fill (or must expire), or a
        margin position's mark can reach its liquidation price; a large number when neither can
        happen. Bars before it cannot change anything here, so they may be skipped."""
        best = NEVER
        for book in self._books.values():
            for resting in book:
                wake = resting.wake
                if wake is None or wake <= after:
                    wake = resting.wake = self._scan(resting, after + 1)
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

    def _scan(self, resting: _Resting, start: int) -> int:
        order = resting.order
        if order.order_type is MARKET or order.time_in_force is IOC:
            return start
        low, high = self._ranges[order.instrument]
        buy = order.side is BUY
        if order.order_type is LIMIT or resting.armed:
            assert order.limit_price is not None
            level, below = order.limit_price, buy
        else:
            assert order.stop_price is not None
            level, below = order.stop_price, not buy
        return first_reach(low if below else high, level, below, start)

    def _scan_liquidation(self, symbol: str, start: int) -> int:
        assert self._margin is not None
        price = self._level(symbol)
        assert price is not None
        marks = self._marks[symbol]
        long = self.account.positions[symbol].quantity > 0.0
        return first_reach(marks.low if long else marks.high, price, long, start)

    def cancel_all(self, reason: str) -> None:
        """End of data: every order still open gets its terminal answer."""
        for book in self._books.values():
            for resting in book:
                self._close(resting, reason)
            self._resting -= len(book)
            book.clear()
        if self._bar_subscription is not None:
            self._bar_subscription.pause()

    # --- matching ------------------------------------------------------------------------------

    def _match(self, bar: Bar, book: list[_Resting]) -> None:
        # Eligible: accepted by the time the bar opened (the clock runs on bar closes, adr/0019: an
        # order placed at one bar's close is accepted when the next bar opens).
        ts = bar.ts_event
        eligible = [r for r in book if r.accepted_ts <= ts]
        watching = self._exposed and self._margin is not None
        if not eligible:
            if watching and self.account.positions[bar.instrument].quantity:
                self._watch(bar, self._mark_path(bar), 0.0, 3.0)
            return
        path = bar_path(bar, self._low_first(bar))
        hits: list[tuple[float, int, _Resting, Trigger]] = []
        for resting in eligible:
            order = resting.order
            hit = trigger(order, path, resting.armed)
            if order.order_type is STOP_LIMIT and not resting.armed:
                resting.armed = hit is not None or stop_reached(order, path)
            if hit is not None:
                hits.append((hit.time, resting.seq, resting, hit))
        if len(hits) > 1:
            if bar.high != bar.low:
                self.path_decided_bars += 1
            hits.sort(key=lambda h: (h[0], h[1]))
        mark_path = self._mark_path(bar) if watching else None
        elapsed = 0.0
        for time, _, resting, hit in hits:
            if resting not in book:
                continue  # canceled by a liquidation earlier on this bar
            if mark_path is not None:
                self._watch(bar, mark_path, elapsed, time)
                if resting not in book:
                    continue
            if self._execute(resting, hit, bar):
                self._remove(book, resting)
            elapsed = time
        if mark_path is not None:
            self._watch(bar, mark_path, elapsed, 3.0)
        for resting in eligible:
            if resting.order.time_in_force is IOC and resting in book:
                self._remove(book, resting)
                now = self._clock.now
                self._bus.publish(
                    OrderExpired(order_id=resting.order.order_id, ts_event=now, ts_init=now)
                )

    def _remove(self, book: list[_Resting], resting: _Resting) -> None:
        book.remove(resting)
        self._resting -= 1
        self._watch_bars()

    def _watch_bars(self) -> None:
        """Be called for bars exactly while something can happen on one."""
        subscription = self._bar_subscription
        if subscription is None:
            return
        if self._resting or self._exposed:
            subscription.resume()
        else:
            subscription.pause()

    def _low_first(self, bar: Bar) -> bool:
        if self._pessimistic:
            return self.account.positions[bar.instrument].quantity > 0.0
        return bar.close >= bar.open

    def _execute(self, resting: _Resting, hit: Trigger, bar: Bar) -> bool:
        """Fill as much of `resting` as the bar, the slippage model and the account allow.

        Returns True when the order is done (filled, or its remainder canceled)."""
        order = resting.order
        symbol = order.instrument
        instrument = self._instruments[symbol]
        account = self.account
        buy = order.side is BUY
        price = hit.price
        sized_now = resting.remaining is None
        remaining = (
            self._size_fraction(order, instrument, price, hit.liquidity)
            if resting.remaining is None
            else resting.remaining
        )
        if remaining <= 0.0:
            self._close(resting, "order sized to zero at fill")
            return True
        capacity = self._capacity(bar)
        # A partial fill stays on the lot grid, or the position would carry dust no sell could clear.
        quantity = remaining if remaining <= capacity else instrument.floor_quantity(capacity)
        if quantity <= 0.0:
            # Nothing fills on this bar: a fraction order stays unsized until the bar where it fills.
            return False
        if hit.slips:
            price = instrument.round_price(
                self._slippage.fill_price(order.side, price, quantity, bar, self._rng)
            )
            if sized_now and buy and price != hit.price:
                # Size the cash fraction at the price actually paid, not the pre-slippage one.
                remaining = self._size_fraction(order, instrument, price, hit.liquidity)
                quantity = min(remaining, quantity)
        resting.remaining = remaining
        reducible = account.reducible(symbol, buy)
        quantity, shortfall = self._cap(
            order, instrument, quantity, reducible, price, hit.liquidity, sized_now
        )
        if quantity <= 0.0:
            self._close(resting, shortfall or "order sized to zero at fill")
            return True
        # Subtracting partial fills accumulates float error; a remainder made only of it is none.
        leaves = instrument.round_quantity(remaining - quantity)
        if leaves <= remaining * 1e-12:
            leaves = 0.0
        if leaves == 0.0 and order.fraction == 1.0 and reducible > 0.0:
            # Closing takes exactly what is held, so no float dust of a position outlives it.
            quantity = reducible
        fee = self._fees.fee(quantity * price * instrument.contract_size, hit.liquidity)
        if capacity != math.inf:
            self._use_volume(bar, quantity)
        resting.remaining = leaves
        self._book(symbol, buy, quantity, price, fee)
        self._bus.publish(
            OrderFilled(
                order_id=order.order_id,
                instrument=symbol,
                side=order.side,
                price=price,
                quantity=quantity,
                fee=fee,
                liquidity=hit.liquidity,
                leaves_quantity=leaves,
                # Stamped with the open time of the bar it executes on, its label (adr/0019).
                ts_event=bar.ts_event,
                ts_init=self._clock.now,
            )
        )
        if leaves > 0.0 and shortfall:
            self._close(resting, shortfall)
            return True
        return leaves == 0.0

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

    def _close(self, resting: _Resting, reason: str) -> None:
        now = self._clock.now
        self._bus.publish(
            OrderCanceled(order_id=resting.order.order_id, reason=reason, ts_event=now, ts_init=now)
        )

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
            book = self._books[victim]
            for resting in list(book):
                self._remove(book, resting)
                self._close(resting, "position liquidated")
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
