"""How much of an order a fill takes: a fraction order sized at the fill price, the slipped
price, the bar's volume capacity, and the cap the venue's account sets (spot: no negative cash, no
short; margin: the available margin)."""

from __future__ import annotations

from backtester.domain.enums import BUY, Liquidity
from backtester.domain.instrument import Instrument
from backtester.domain.messages import Bar, SubmitOrder
from backtester.execution.venue_state import VenueState
from backtester.orders import Trigger


class FillSizing(VenueState):
    def _slipped(
        self,
        order: SubmitOrder,
        instrument: Instrument,
        hit: Trigger,
        bar: Bar,
        remaining: float,
        quantity: float,
        sized_now: bool,
        reducible: float,
    ) -> tuple[float, float, float]:
        """The taker's price after slippage (no worse than a limit it has), and the fraction order
        sized again at it."""
        price = instrument.round_price(
            hit.price
            if self._no_slippage
            else self._slippage.fill_price(order.side, hit.price, quantity, bar, self._rng)
        )
        buy = order.side is BUY
        if hit.limit is not None:
            price = min(price, hit.limit) if buy else max(price, hit.limit)
        if sized_now and buy and price != hit.price:
            # Size the cash fraction at the price actually paid, not the pre-slippage one.
            remaining = self._size_fraction(order, instrument, price, hit.liquidity, reducible)
            quantity = min(remaining, quantity)
        return price, remaining, quantity

    def _cap(
        self,
        order: SubmitOrder,
        instrument: Instrument,
        quantity: float,
        reducible: float,
        price: float,
        liquidity: Liquidity,
    ) -> tuple[float, str]:
        """The quantity the account allows, and the reason when it is less than asked (not asked
        of a spot fraction sized at this fill: `_execute`)."""
        symbol = order.instrument
        opening = quantity - reducible if quantity > reducible else 0.0
        if opening <= 0.0:
            return quantity, ""
        account = self.account
        if account.opening_refusal(symbol, order.side is BUY) is not None:
            # Spot: a sell can only take what is held.
            return reducible, "insufficient position at fill"
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
        self,
        order: SubmitOrder,
        instrument: Instrument,
        price: float,
        liquidity: Liquidity,
        reducible: float,
    ) -> float:
        """A fraction of the position when the order reduces it (`reducible` of it: all of it is
        exactly what is held, flooring a float sum of lots could leave one behind), else of the
        buying power."""
        assert order.fraction is not None
        account = self.account
        symbol = order.instrument
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
