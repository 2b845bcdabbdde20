"""The risk module: rounds orders onto the instrument's grids and accepts or denies each with a reason."""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from backtester.accounting.accounts import Account, MarginAccount
from backtester.config import RiskConfig
from backtester.core.bus import MessageBus
from backtester.core.clock import SimClock
from backtester.domain.enums import BUY, GTC, TAKER
from backtester.domain.instrument import Instrument
from backtester.domain.marks import MarkBars
from backtester.domain.messages import (
    Bar,
    ContractExpired,
    ModifyOrder,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderModifyRejected,
    OrderReleased,
    SubmitOrder,
    SubmitOrderList,
)
from backtester.domain.models import FeeModel
from backtester.orders import KINDS, OrderKind
from backtester.risk import rules


class Denial(NamedTuple):
    """Why an order is denied: `code` names the rule (stats count by it), `reason` says it all."""

    code: str
    reason: str


class RiskEngine:
    """Reads the run's client-side account (booked by the ledger, adr/0023) and keeps the buying
    power that open orders have claimed, so two orders cannot both spend the same money."""

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
        self._publish = bus.publisher()
        self._clock = clock
        self._instruments = instruments
        self._fees = fees
        self._config = config
        self._limits_position = (
            config.max_position_quantity is not None or config.max_position_notional is not None
        )
        self._cap = config.on_limit == "cap"
        self.account = account
        self._margin = isinstance(account, MarginAccount)
        self._marks = marks
        # The mark of each instrument's latest bar: margin accounts need it for buying power.
        self._marks_now: dict[str, float] = {s: float(m.open[0]) for s, m in marks.items()}
        self._mark_closes: dict[str, list[float]] = {}
        self._reserved: dict[int, float] = {}
        # Orders that open exposure: instrument and signed quantity still to fill.
        self._pending: dict[int, tuple[str, float]] = {}
        # Every open order as accepted (or last amended), and what of it has filled.
        self._open: dict[int, SubmitOrder] = {}
        self._filled: dict[int, float] = {}
        self._expired: dict[str, int] = {}

    def subscribe(self, bus: MessageBus) -> None:
        bus.subscribe(SubmitOrder, self.on_submit)
        bus.subscribe(SubmitOrderList, self.on_submit_list)
        bus.subscribe(ModifyOrder, self.on_modify)
        bus.subscribe(OrderFilled, self.on_filled)
        bus.subscribe(OrderReleased, self.on_released)
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
        denial, accepted = self._evaluate(order)
        if denial is not None or accepted is None:
            self._deny(order.order_id, denial or Denial("denied", "denied"))
            return
        self._open[accepted.order_id] = accepted
        now = self._clock.now
        self._publish(OrderAccepted(accepted, now, now))

    def on_submit_list(self, command: SubmitOrderList) -> None:
        """All of a list's orders are accepted, or all denied (with the reason of the first that
        failed). An order released by another's fill is checked when its shape is known; what it
        may fill is its parent's fill, so it claims no buying power of its own."""
        accepted: list[SubmitOrder] = []
        failed: tuple[int, Denial] | None = None
        ids = {order.order_id for order in command.orders}
        for order in command.orders:
            if order.parent_id is not None and order.parent_id not in ids:
                denial: Denial | None = Denial(
                    "malformed", f"parent order {order.parent_id} is not in the list"
                )
                checked = None
            elif order.parent_id is not None:
                denial, checked = self._check_form(order)
            else:
                denial, checked = self._evaluate(order)
            if denial is not None or checked is None:
                failed = (order.order_id, denial or Denial("denied", "denied"))
                break
            accepted.append(checked)
        if failed is not None:
            for order in accepted:
                self._release(order.order_id)
            failed_id, why = failed
            for order in command.orders:
                if order.order_id == failed_id:
                    self._deny(order.order_id, why)
                else:
                    self._deny(
                        order.order_id,
                        Denial(why.code, f"linked order {failed_id} denied: {why.reason}"),
                    )
            return
        now = self._clock.now
        for order in accepted:
            self._open[order.order_id] = order
            self._bus.publish(OrderAccepted(order=order, ts_event=now, ts_init=now))

    def on_modify(self, command: ModifyOrder) -> None:
        now = self._clock.now
        order = self._open.get(command.order_id)
        why: str | None = None
        if order is None:
            why = "no open order with this id"
        else:
            changes: dict[str, float] = {}
            if command.quantity is not None:
                if order.quantity is None:
                    why = "the quantity of an order sized by fraction is set when it fills"
                elif command.quantity <= self._filled.get(order.order_id, 0.0):
                    why = (
                        f"quantity {command.quantity:.8g} is not above what has filled "
                        f"({self._filled.get(order.order_id, 0.0):.8g})"
                    )
                changes["quantity"] = command.quantity
            if command.limit_price is not None:
                if order.limit_price is None:
                    why = why or f"{order.order_type} order has no limit price"
                changes["limit_price"] = command.limit_price
            if command.stop_price is not None:
                if order.stop_price is None:
                    why = why or f"{order.order_type} order has no stop price"
                changes["stop_price"] = command.stop_price
            if not changes:
                why = why or "nothing to modify"
            if why is None:
                why, amended = self._amend(order, msgspec.structs.replace(order, **changes))
                if amended is not None:
                    self._open[order.order_id] = amended
                    self._bus.publish(OrderModified(order=amended, ts_event=now, ts_init=now))
                    return
        self._bus.publish(
            OrderModifyRejected(
                order_id=command.order_id, reason=why or "rejected", ts_event=now, ts_init=now
            )
        )

    def _amend(self, old: SubmitOrder, new: SubmitOrder) -> tuple[str | None, SubmitOrder | None]:
        """The amended order checked as if it were new for what is left of it, its claim on buying
        power replaced; the old claim stands if the amendment fails."""
        order_id = old.order_id
        claim = self._reserved.pop(order_id, None), self._pending.pop(order_id, None)
        filled = self._filled.get(order_id, 0.0)
        rest = new
        if new.quantity is not None and filled:
            rest = msgspec.structs.replace(new, quantity=new.quantity - filled)
        denial, checked = (
            self._check_form(rest)
            if rest.parent_id is not None
            else self._evaluate(rest, cap=False)
        )
        if denial is not None or checked is None:
            reserved, pending = claim
            if reserved is not None:
                self._reserved[order_id] = reserved
            if pending is not None:
                self._pending[order_id] = pending
            return (denial.reason if denial else "rejected"), None
        if checked.quantity is not None and filled:
            checked = msgspec.structs.replace(checked, quantity=checked.quantity + filled)
        return None, checked

    def _deny(self, order_id: int, denial: Denial) -> None:
        now = self._clock.now
        self._bus.publish(
            OrderDenied(
                order_id=order_id,
                reason=denial.reason,
                code=denial.code,
                ts_event=now,
                ts_init=now,
            )
        )

    def _check_form(self, order: SubmitOrder) -> tuple[Denial | None, SubmitOrder | None]:
        """What an order must be whatever the account holds: a known instrument and type, a
        valid shape, and prices on the grid."""
        denial, checked, _ = self._form(order)
        return denial, checked

    def _form(
        self, order: SubmitOrder
    ) -> tuple[Denial | None, SubmitOrder | None, OrderKind | None]:
        """`_check_form`, with the order's type for the checks that follow."""
        symbol = order.instrument
        instrument = self._instruments.get(symbol)
        if instrument is None:
            return Denial("unknown_instrument", f"unknown instrument {symbol!r}"), None, None
        if symbol in self._expired:
            return (
                Denial("contract_expired", f"{symbol} expired: a future trades until its expiry"),
                None,
                None,
            )
        kind = KINDS.get(order.order_type)
        if kind is None:
            return Denial("malformed", f"unknown order type {order.order_type!r}"), None, None
        reason = rules.check_shape(order) or kind.validate(order)
        if reason:
            return Denial("malformed", reason), None, None
        if order.time_in_force is not GTC or order.expire_time is not None or order.post_only:
            # A GTC order without expiry or post-only flag passes these checks by construction.
            reason = rules.check_time_in_force(order, self._clock.now)
            if reason:
                return Denial("time_in_force", reason), None, None
        order = kind.on_grids(order, instrument)
        if order.quantity is not None and instrument.lot_size is not None:
            order = _on_lot(order, instrument)
        return None, order, kind

    def _evaluate(
        self, order: SubmitOrder, *, cap: bool = True
    ) -> tuple[Denial | None, SubmitOrder | None]:
        denial, checked, kind = self._form(order)
        if denial is not None or checked is None or kind is None:
            return denial, None
        order = checked
        symbol = order.instrument
        instrument = self._instruments[symbol]
        reason: str | None = None
        if order.post_only:
            reason = rules.check_post_only(order)
            if reason:
                return Denial("post_only", reason), None
        price = kind.expected_price(order)
        account = self.account
        buy = order.side is BUY
        held = account.positions[symbol].quantity
        reducible = account.reducible(symbol, buy)
        refusal: str | None
        if order.quantity is None and reducible > 0.0:
            # A fraction of the position it reduces opens nothing: what opening may spend, and
            # whether the account may open at all, are never read for it.
            available, refusal = 0.0, None
        else:
            available = account.buying_power(self._marks_now)
            reserved = self._reserved
            if reserved:
                available -= sum(reserved.values())
            refusal = account.opening_refusal(symbol, buy)
        if order.reduce_only and reducible <= 0.0:
            return Denial(
                "reduce_only",
                f"reduce-only {order.side.value}: no position to reduce (held {held:.8g})",
            ), None
        if order.quantity is not None:
            quantity = order.quantity
            reason = rules.check_quantity_bounds(quantity, instrument)
            opening = quantity - reducible if quantity > reducible else 0.0
            if order.reduce_only:
                opening = 0.0
        elif reducible > 0.0:
            assert order.fraction is not None
            quantity, opening = order.fraction * reducible, 0.0
        else:
            if refusal is not None:
                return Denial(
                    "insufficient_position", f"insufficient position: nothing to sell ({refusal})"
                ), None
            if available <= 0:
                money = "margin" if self._margin else "cash"
                return Denial(
                    f"insufficient_{money}", f"insufficient {money}: available {available:.8g}"
                ), None
            assert order.fraction is not None
            quantity = opening = account.quantity_for(
                symbol, price, order.fraction * available, self._taker_fee
            )
        if reason:
            return Denial("quantity", reason), None
        multiplier = instrument.contract_size
        notional = quantity * price * multiplier
        if order.fraction is not None and opening > 0.0:
            # Sized from available buying power by construction; a cost check would only see
            # float rounding.
            cost = order.fraction * available
            balance_reason = None
        elif opening > 0.0:
            cost = account.opening_cost(
                symbol, opening * price * multiplier, self._fees.fee(notional, TAKER)
            )
            balance_reason = rules.check_balance(
                order.side, quantity, opening, cost, available, held, refusal, self._margin
            )
        else:
            # Nothing opens: nothing to pay for (what check_balance passes at once).
            cost = 0.0
            balance_reason = None
        if instrument.min_notional is not None or instrument.max_notional is not None:
            reason = rules.check_notional(notional, instrument)
            if reason:
                return Denial("notional", reason), None
        if balance_reason:
            code = balance_reason.split(":", 1)[0].replace(" ", "_")
            return Denial(code, balance_reason), None
        if opening > 0.0:
            signed = opening if buy else -opening
            pending = held + (self._pending_quantity(symbol) if self._pending else 0)
            projected = pending + (quantity if buy else -quantity)
            if self._margin:
                reason = rules.check_bracket_leverage(
                    abs(projected) * price * multiplier, instrument
                )
                if reason:
                    return Denial("leverage", reason), None
            if self._limits_position:
                config = self._config
                reason = rules.check_max_position(
                    projected, price, config.max_position_quantity, config.max_position_notional
                )
                if reason and cap and self._cap:
                    return self._capped(order, pending, price, instrument)
                if reason:
                    return Denial("max_position", reason), None
            self._reserved[order.order_id] = cost
            self._pending[order.order_id] = (symbol, signed)
        return None, order

    def _capped(
        self, order: SubmitOrder, pending: float, price: float, instrument: Instrument
    ) -> tuple[Denial | None, SubmitOrder | None]:
        """The order cut to the quantity that takes the position to the limit, checked again."""
        config = self._config
        toward = pending if order.side is BUY else -pending
        room = rules.position_room(
            toward, price, config.max_position_quantity, config.max_position_notional
        )
        if instrument.lot_size is not None:
            room = instrument.floor_quantity(room)
        if room <= 0.0:
            return Denial(
                "max_position",
                f"position {pending:.8g} is at its limit: no room for a {order.side.value}",
            ), None
        return self._evaluate(
            msgspec.structs.replace(order, quantity=room, fraction=None), cap=False
        )

    def _taker_fee(self, notional: float) -> float:
        return self._fees.fee(notional, TAKER)

    def _pending_quantity(self, instrument: str) -> float:
        return sum(q for symbol, q in self._pending.values() if symbol == instrument)

    def on_filled(self, fill: OrderFilled) -> None:
        # The fill itself is booked by the ledger, into the account read here.
        order_id = fill.order_id
        if fill.leaves_quantity == 0.0:
            self._release(order_id)
            return
        if order_id in self._open:
            self._filled[order_id] = self._filled.get(order_id, 0.0) + fill.quantity
        if order_id in self._pending:
            # Keep the claim on buying power proportional to what is still to fill.
            symbol, quantity = self._pending[order_id]
            size = abs(quantity)
            left = max(size - fill.quantity, 0.0)
            share = left / size if size > 0 else 0.0
            self._reserved[order_id] *= share
            self._pending[order_id] = (symbol, left if quantity > 0 else -left)

    def on_released(self, event: OrderReleased) -> None:
        # Live now with its prices set and sized by its parent's fill.
        self._open[event.order.order_id] = event.order

    def on_closed(self, event: OrderCanceled | OrderExpired) -> None:
        self._release(event.order_id)

    def on_expired(self, event: ContractExpired) -> None:
        self._expired[event.instrument] = event.ts_event

    def _release(self, order_id: int) -> None:
        # Membership tests and `del`, not `pop(.., None)`: no call when the order holds nothing.
        if order_id in self._reserved:
            del self._reserved[order_id]
        if order_id in self._pending:
            del self._pending[order_id]
        if order_id in self._open:
            del self._open[order_id]
        if order_id in self._filled:
            del self._filled[order_id]


def _on_lot(order: SubmitOrder, instrument: Instrument) -> SubmitOrder:
    """Quantity floored to the lot size (never rounded up)."""
    if order.quantity is None or instrument.lot_size is None:
        return order
    return msgspec.structs.replace(order, quantity=instrument.floor_quantity(order.quantity))
