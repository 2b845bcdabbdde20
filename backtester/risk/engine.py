"""The risk module: rounds orders onto the instrument's grids and accepts or denies each with a reason."""

from __future__ import annotations

import msgspec

from backtester.accounting.accounts import Account, MarginAccount
from backtester.config import RiskConfig
from backtester.core.bus import MessageBus
from backtester.core.clock import SimClock
from backtester.domain.enums import BUY, TAKER
from backtester.domain.instrument import Instrument
from backtester.domain.marks import MarkBars
from backtester.domain.messages import (
    Bar,
    ContractExpired,
    FundingPaid,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    SubmitOrder,
)
from backtester.domain.models import FeeModel
from backtester.risk import rules


class RiskEngine:
    """Keeps its own account, fed the fills and funding payments, and the buying power that open
    orders have claimed, so two orders cannot both spend the same money."""

    def __init__(
        self,
        bus: MessageBus,
        clock: SimClock,
        instruments: dict[str, Instrument],
        fees: FeeModel,
        config: RiskConfig,
        account: Account,
        marks: dict[str, MarkBars],
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._instruments = instruments
        self._fees = fees
        self._config = config
        self._limits_position = (
            config.max_position_quantity is not None or config.max_position_notional is not None
        )
        self.account = account
        self._margin = isinstance(account, MarginAccount)
        self._marks = marks
        # The mark of each instrument's latest bar: margin accounts need it for buying power.
        self._marks_now: dict[str, float] = {s: float(m.open[0]) for s, m in marks.items()}
        self._mark_closes: dict[str, list[float]] = {}
        self._reserved: dict[int, float] = {}
        # Orders that open exposure: instrument and signed quantity still to fill.
        self._pending: dict[int, tuple[str, float]] = {}
        self._expired: dict[str, int] = {}

    def subscribe(self, bus: MessageBus) -> None:
        bus.subscribe(SubmitOrder, self.on_submit)
        bus.subscribe(OrderFilled, self.on_filled)
        bus.subscribe(FundingPaid, self.on_funding)
        bus.subscribe(OrderCanceled, self.on_closed)
        bus.subscribe(OrderExpired, self.on_closed)
        bus.subscribe(ContractExpired, self.on_expired)
        if self.account.marks_matter:
            # Cross positions' profit counts toward buying power: it needs their marks.
            bus.subscribe(Bar, self.on_bar)

    def on_bar(self, bar: Bar) -> None:
        closes = self._mark_closes.get(bar.instrument)
        if closes is None:
            closes = self._mark_closes[bar.instrument] = self._marks[bar.instrument].close.tolist()
        self._marks_now[bar.instrument] = closes[bar.index]

    def on_submit(self, order: SubmitOrder) -> None:
        reason, accepted = self._evaluate(order)
        now = self._clock.now
        if reason is not None or accepted is None:
            self._bus.publish(
                OrderDenied(
                    order_id=order.order_id, reason=reason or "denied", ts_event=now, ts_init=now
                )
            )
            return
        self._bus.publish(OrderAccepted(order=accepted, ts_event=now, ts_init=now))

    def _evaluate(self, order: SubmitOrder) -> tuple[str | None, SubmitOrder | None]:
        symbol = order.instrument
        instrument = self._instruments.get(symbol)
        if instrument is None:
            return f"unknown instrument {symbol!r}", None
        if symbol in self._expired:
            return f"{symbol} expired: a future trades until its expiry", None
        reason = rules.check_shape(order)
        if reason:
            return reason, None
        order = _on_grids(order, instrument)
        price = rules.expected_price(order)
        account = self.account
        buy = order.side is BUY
        available = account.buying_power(self._marks_now) - sum(self._reserved.values())
        held = account.quantity(symbol)
        reducible = account.reducible(symbol, buy)
        refusal = account.opening_refusal(symbol, buy)
        if order.quantity is not None:
            quantity = order.quantity
            reason = rules.check_quantity_bounds(quantity, instrument)
            opening = quantity - reducible if quantity > reducible else 0.0
        elif reducible > 0.0:
            assert order.fraction is not None
            quantity, opening = order.fraction * reducible, 0.0
        else:
            if refusal is not None:
                return f"insufficient position: nothing to sell ({refusal})", None
            if available <= 0:
                money = "margin" if self._margin else "cash"
                return f"insufficient {money}: available {available:.8g}", None
            assert order.fraction is not None
            quantity = opening = account.quantity_for(
                symbol, price, order.fraction * available, self._taker_fee
            )
        if reason:
            return reason, None
        multiplier = instrument.contract_size
        notional = quantity * price * multiplier
        if order.fraction is not None and opening > 0.0:
            # Sized from available buying power by construction; a cost check would only see
            # float rounding.
            cost = order.fraction * available
            balance_reason = None
        else:
            cost = account.opening_cost(
                symbol, opening * price * multiplier, self._fees.fee(notional, TAKER)
            )
            balance_reason = rules.check_balance(
                order.side, quantity, opening, cost, available, held, refusal, self._margin
            )
        reason = rules.check_notional(notional, instrument) or balance_reason
        if reason:
            return reason, None
        if opening > 0.0:
            signed = opening if buy else -opening
            projected = held + self._pending_quantity(symbol) + (quantity if buy else -quantity)
            if self._margin:
                reason = rules.check_bracket_leverage(
                    abs(projected) * price * multiplier, instrument
                )
                if reason:
                    return reason, None
            if self._limits_position:
                reason = rules.check_max_position(
                    projected,
                    price,
                    self._config.max_position_quantity,
                    self._config.max_position_notional,
                )
                if reason:
                    return reason, None
            self._reserved[order.order_id] = cost
            self._pending[order.order_id] = (symbol, signed)
        return None, order

    def _taker_fee(self, notional: float) -> float:
        return self._fees.fee(notional, TAKER)

    def _pending_quantity(self, instrument: str) -> float:
        return sum(q for symbol, q in self._pending.values() if symbol == instrument)

    def on_filled(self, fill: OrderFilled) -> None:
        self.account.book_fill(
            fill.instrument, fill.side is BUY, fill.quantity, fill.price, fill.fee
        )
        if fill.leaves_quantity == 0.0:
            self._release(fill.order_id)
        elif fill.order_id in self._pending:
            # Keep the claim on buying power proportional to what is still to fill.
            symbol, quantity = self._pending[fill.order_id]
            size = abs(quantity)
            left = max(size - fill.quantity, 0.0)
            share = left / size if size > 0 else 0.0
            self._reserved[fill.order_id] *= share
            self._pending[fill.order_id] = (symbol, left if quantity > 0 else -left)

    def on_funding(self, payment: FundingPaid) -> None:
        self.account.apply_funding(payment.instrument, payment.amount)

    def on_closed(self, event: OrderCanceled | OrderExpired) -> None:
        self._release(event.order_id)

    def on_expired(self, event: ContractExpired) -> None:
        self._expired[event.instrument] = event.ts_event

    def _release(self, order_id: int) -> None:
        self._reserved.pop(order_id, None)
        self._pending.pop(order_id, None)


def _on_grids(order: SubmitOrder, instrument: Instrument) -> SubmitOrder:
    """Quantity floored to the lot size (never rounded up), prices to the nearest tick."""
    changes: dict[str, float] = {}
    if order.quantity is not None and instrument.lot_size is not None:
        changes["quantity"] = instrument.floor_quantity(order.quantity)
    if order.limit_price is not None and instrument.tick_size is not None:
        changes["limit_price"] = instrument.round_price(order.limit_price)
    if order.stop_price is not None and instrument.tick_size is not None:
        changes["stop_price"] = instrument.round_price(order.stop_price)
    if not changes:
        return order
    return msgspec.structs.replace(order, **changes)
