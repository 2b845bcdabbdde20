"""The simulated venue's state and the primitives every part of it uses: its own account, its open
orders, and closing an order with its answer on the bus."""

from __future__ import annotations

import numpy as np

from backtester.accounting.accounts import Account, Bookings, MarginAccount
from backtester.config import FillConfig, IntrabarPath
from backtester.core.bus import MessageBus, Subscription
from backtester.core.clock import SimClock
from backtester.domain.enums import BUY
from backtester.domain.instrument import Instrument
from backtester.domain.marks import MarkBars
from backtester.domain.messages import Bar, OrderCanceled, OrderExpired, OrderFilled
from backtester.domain.models import FeeModel, SlippageModel
from backtester.execution.book import OrderBook
from backtester.execution.slippage import FixedBpsSlippage, NoSlippage
from backtester.orders import LiveOrder


class VenueState:
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
        bookings: Bookings | None = None,
    ) -> None:
        """`bookings`: where each booking is recorded for the client-side account (adr/0029)."""
        self._bus = bus
        self._publish = bus.publisher()
        self._clock = clock
        self._instruments = instruments
        self._fees = fees
        self._slippage = slippage
        # The built-in models that never move a price or limit a bar's volume: their calls are
        # skipped (a subclass may do either, so the exact types).
        self._no_slippage = type(slippage) is NoSlippage
        self._bounded = type(slippage) not in (NoSlippage, FixedBpsSlippage)
        self._fill = fill
        self._pessimistic = fill.intrabar is IntrabarPath.PESSIMISTIC
        self._optimistic = fill.intrabar is IntrabarPath.OPTIMISTIC
        self._rng = rng
        self.account = account
        self._bookings = bookings
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

    # --- closing orders, booking -----------------------------------------------------------------

    def _book(self, fill: OrderFilled) -> None:
        """Book a fill, which is published next (adr/0029: what it left is recorded with it)."""
        symbol = fill.instrument
        account = self.account
        position = account.positions[symbol]
        was_open = position.quantity != 0.0
        account.book_fill(symbol, fill.side is BUY, fill.quantity, fill.price, fill.fee)
        if self._bookings is not None:
            self._bookings.append((fill, account.booked(symbol)))
        if self._margin is not None:
            self._liquidation_wake[symbol] = None
            self._levels.clear()
            self._guards.clear()
            is_open = position.quantity != 0.0
            if is_open != was_open:
                self._exposed += 1 if is_open else -1
                self._watch_bars()

    def _remove(self, live: LiveOrder) -> None:
        self._orders.remove(live)
        if self._bar_subscription is not None:
            self._watch_bars()

    def _watch_bars(self) -> None:
        """Be called for bars exactly while something can happen on one."""
        subscription = self._bar_subscription
        if subscription is None:
            return
        if self._orders.resting or self._exposed:
            if not subscription.active:
                subscription.resume()
        elif subscription.active:
            subscription.pause()

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

    def _close_all(self, symbol: str, reason: str) -> None:
        for live in self._orders.open_orders():
            if live.order.instrument == symbol and not live.closed:
                self._remove(live)
                self._close(live, reason)
