"""The simulated venue: holds accepted orders, fills them against later bars, answers cancels.

Like a real exchange it keeps its own balances (cash per quote currency, position per instrument): it
sizes fraction orders at the fill price, and caps a buy at what cash pays for and a sell at what is held
(spot: no negative cash, no short). The client-side ledger (`account`) books the same fills from events;
a test checks that both agree.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from backtester.config import FillConfig, IntrabarPath
from backtester.core.bus import MessageBus, Subscription
from backtester.core.clock import SimClock
from backtester.domain.enums import (
    BUY,
    IOC,
    LIMIT,
    MARKET,
    SELL,
    STOP_LIMIT,
    TAKER,
    Liquidity,
)
from backtester.domain.instrument import Instrument
from backtester.domain.messages import (
    Bar,
    CancelOrder,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderFilled,
    SubmitOrder,
)
from backtester.domain.models import FeeModel, SlippageModel
from backtester.execution.matching import (
    Trigger,
    bar_path,
    first_reach,
    stop_reached,
    trigger,
)

NEVER = sys.maxsize


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
        initial_cash: float,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._instruments = instruments
        self._fees = fees
        self._slippage = slippage
        self._fill = fill
        self._pessimistic = fill.intrabar is IntrabarPath.PESSIMISTIC
        self._rng = rng
        self.cash = initial_cash
        self.positions: dict[str, float] = dict.fromkeys(instruments, 0.0)
        self._books: dict[str, list[_Resting]] = {symbol: [] for symbol in instruments}
        self._last_bar: dict[str, Bar] = {}
        self._bar_volume_used: dict[str, tuple[int, float]] = {}
        self._resting = 0
        self._bar_subscription: Subscription | None = None
        self._ranges: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._seq = 0
        self.path_decided_bars = 0

    def subscribe(self, bus: MessageBus) -> None:
        if self._fill.trade_on_close:
            bus.subscribe(Bar, self.on_bar_on_close)
        else:
            # Called for bars only while some order rests: most bars have nothing to match.
            self._bar_subscription = bus.subscribe(Bar, self.on_bar)
            self._bar_subscription.pause()
        bus.subscribe(OrderAccepted, self.on_accepted)
        bus.subscribe(CancelOrder, self.on_cancel)

    # --- handlers ------------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        if self._resting:
            book = self._books[bar.instrument]
            if book:
                self._match(bar, book)

    def on_bar_on_close(self, bar: Bar) -> None:
        """With trade_on_close, market orders fill against the bar that placed them: keep it."""
        self._last_bar[bar.instrument] = bar
        self.on_bar(bar)

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
        if self._bar_subscription is not None:
            self._bar_subscription.resume()

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

    def attach_ranges(self, symbol: str, low: np.ndarray, high: np.ndarray) -> None:
        """Signal mode: the bar ranges that `next_wake` scans to find where resting orders trigger."""
        self._ranges[symbol] = (low, high)

    def next_wake(self, after: int) -> int:
        """The first row after `after` on which some resting order can fill (or must expire); a
        large number when none rests. Bars before it cannot touch any order, so they may be skipped."""
        best = NEVER
        for book in self._books.values():
            for resting in book:
                wake = resting.wake
                if wake is None or wake <= after:
                    wake = resting.wake = self._scan(resting, after + 1)
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
        # Eligible: accepted at or before the bar opened (the engine runs on close times: an order
        # placed at bar t's close is accepted at the next bar's open, no later).
        ts = bar.ts_event
        eligible = [r for r in book if r.accepted_ts <= ts]
        if not eligible:
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
        for _, _, resting, hit in hits:
            if self._execute(resting, hit, bar):
                self._remove(book, resting)
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
        if not self._resting and self._bar_subscription is not None:
            self._bar_subscription.pause()

    def _low_first(self, bar: Bar) -> bool:
        if self._pessimistic:
            return self.positions[bar.instrument] > 0
        return bar.close >= bar.open

    def _execute(self, resting: _Resting, hit: Trigger, bar: Bar) -> bool:
        """Fill as much of `resting` as the bar, the slippage model and the balances allow.

        Returns True when the order is done (filled, or its remainder canceled)."""
        order = resting.order
        instrument = self._instruments[order.instrument]
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
        shortfall = ""
        if buy:
            # A fraction sized just now at this price is affordable by construction.
            if not sized_now:
                affordable = self._affordable(instrument, price, hit.liquidity, self.cash)
                if affordable < quantity:
                    quantity, shortfall = affordable, "insufficient cash at fill"
        else:
            held = self.positions[order.instrument]
            if held < quantity:
                quantity, shortfall = held, "insufficient position at fill"
        if quantity <= 0.0:
            self._close(resting, shortfall or "order sized to zero at fill")
            return True
        # Subtracting partial fills accumulates float error; a remainder made only of it is none.
        leaves = instrument.round_quantity(remaining - quantity)
        if leaves <= remaining * 1e-12:
            leaves = 0.0
        if not buy and leaves == 0.0 and order.fraction == 1.0:
            # Closing sells exactly what is held, so no float dust of a position outlives it.
            quantity = self.positions[order.instrument]
        notional = quantity * price
        fee = self._fees.fee(notional, hit.liquidity)
        if buy:
            self.cash -= notional + fee
            self.positions[order.instrument] += quantity
        else:
            self.cash += notional - fee
            self.positions[order.instrument] -= quantity
        if capacity != math.inf:
            self._use_volume(bar, quantity)
        resting.remaining = leaves
        now = self._clock.now
        self._bus.publish(
            OrderFilled(
                order_id=order.order_id,
                instrument=order.instrument,
                side=order.side,
                price=price,
                quantity=quantity,
                fee=fee,
                liquidity=hit.liquidity,
                leaves_quantity=leaves,
                # When it executed: on the bar it filled on (its open time is its label).
                ts_event=bar.ts_event,
                ts_init=now,
            )
        )
        if leaves > 0.0 and shortfall:
            self._close(resting, shortfall)
            return True
        return leaves == 0.0

    def _size_fraction(
        self, order: SubmitOrder, instrument: Instrument, price: float, liquidity: Liquidity
    ) -> float:
        assert order.fraction is not None
        if order.side is SELL:
            held = self.positions[order.instrument]
            # All of it is exactly what is held: flooring a float sum of lots could leave one behind.
            return (
                held if order.fraction == 1.0 else instrument.floor_quantity(order.fraction * held)
            )
        return self._affordable(instrument, price, liquidity, order.fraction * self.cash)

    def _affordable(
        self, instrument: Instrument, price: float, liquidity: Liquidity, budget: float
    ) -> float:
        """Largest quantity on the lot grid whose cost (notional + fee) does not exceed `budget`,
        exactly in floats: budget / (price * (1 + fee)) can overshoot by an ulp, and spot cash must
        never go negative, so step down until the booked cost fits."""
        if budget <= 0.0:
            return 0.0
        quantity = instrument.floor_quantity(
            self._fees.affordable_quantity(budget, price, liquidity)
        )
        while quantity > 0.0:
            notional = quantity * price
            if notional + self._fees.fee(notional, liquidity) <= budget:
                return quantity
            step = instrument.lot_size
            quantity = (
                instrument.floor_quantity(quantity - step)
                if step is not None
                else math.nextafter(quantity, 0.0)
            )
        return 0.0

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
