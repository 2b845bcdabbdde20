"""The venue's margin side: funding payments, a dated future's settlement at its expiry, and the
liquidation of a position whose mark reaches its liquidation price along a bar's path."""

from __future__ import annotations

from backtester.accounting import arithmetic as a
from backtester.domain.enums import BUY, MARKET, SELL, TAKER, Liquidity
from backtester.domain.messages import (
    Bar,
    ContractExpired,
    FundingPaid,
    FundingRate,
    OrderFilled,
    PositionLiquidated,
    PositionSettled,
    SubmitOrder,
)
from backtester.execution.venue_state import VenueState
from backtester.orders import LiveOrder, Path, first_reach, touch

LIQUIDATION_TAG = "liquidation"
SETTLEMENT_TAG = "settlement"


class MarginWatch(VenueState):
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
        payment = FundingPaid(
            instrument=symbol,
            rate=event.rate,
            mark_price=event.mark_price,
            quantity=held,
            amount=amount,
            ts_event=event.ts_event,
            ts_init=self._clock.now,
        )
        if self._bookings is not None:
            self._bookings.append((payment, None))
        self._bus.publish(payment)

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

    def _scan_liquidation(self, symbol: str, start: int) -> int:
        assert self._margin is not None
        price = self._level(symbol)
        assert price is not None
        marks = self._marks[symbol]
        long = self.account.positions[symbol].quantity > 0.0
        return first_reach(marks.low if long else marks.high, price, long, start)

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

    def _closed_by_watch(
        self, bar: Bar, mark_path: Path, start: float, until: float, live: LiveOrder
    ) -> bool:
        """Watch for liquidation up to the order's hit; whether that closed the order."""
        self._watch(bar, mark_path, start, until)
        return live.closed

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
        bankrupt = a.bankruptcy_price(position.avg_price, backing, size, long)
        marks[symbol] = a.liquidation_fill_price(mark, bankrupt, long)
        left = (
            position.margin + position.unrealized_pnl(marks[symbol])
            if margin.is_isolated(symbol)
            else margin.cross_equity(marks)
        )
        for victim in victims:
            held = margin.positions[victim]
            instrument = held.instrument
            price = marks[victim]
            fee = a.liquidation_fee(
                instrument.liquidation_fee, held.quantity, instrument.contract_size, price, left
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
        now = self._clock.now
        fill = OrderFilled(
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
        self._book(fill)
        self._bus.publish(fill)
