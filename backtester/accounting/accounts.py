"""The account model: pure classes (no bus, no clock) that every module holding balances uses.

`CashAccount` is a spot account: buys are paid from cash, sells come out of what is held, nothing is
ever short. `MarginAccount` trades contracts: signed positions at a leverage, initial margin per
position, maintenance margin from the instrument's brackets, funding, and liquidation prices in
isolated or cross mode. The venue holds its own instance (as an exchange does); the client side (the
ledger, which books, and the risk engine and the strategy context, which read) shares one (adr/0023),
and takes what the venue's booking of each fill left (`booked`, `take_booked`: adr/0029); the booking
arithmetic lives in `accounting.arithmetic` (adr/0017).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import ClassVar, NamedTuple

from backtester.accounting import arithmetic as a
from backtester.domain.instrument import Instrument, MarginMode

Marks = Mapping[str, float]
FeeOf = Callable[[float], float]  # fee of a fill of the given notional


class Position:
    """One instrument's position: signed quantity (contracts, or units for spot), the average entry
    price of what is open, and the profit, fees, funding and (margin accounts) initial margin."""

    __slots__ = ("avg_price", "fees", "funding", "instrument", "margin", "quantity", "realized_pnl")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.quantity = 0.0
        self.avg_price = 0.0
        self.realized_pnl = 0.0
        self.fees = 0.0
        self.funding = 0.0
        self.margin = 0.0

    @property
    def side(self) -> str:
        return "long" if self.quantity > 0.0 else "short" if self.quantity < 0.0 else "flat"

    def unrealized_pnl(self, mark: float) -> float:
        if self.quantity == 0.0:
            return 0.0
        return a.realized_pnl(
            self.quantity, self.avg_price, mark, abs(self.quantity), self.instrument.contract_size
        )

    def notional(self, mark: float) -> float:
        return abs(self.quantity) * mark * self.instrument.contract_size


class FillBooking(NamedTuple):
    """What one booked fill did to its position: the quantity it closed (at the old entry price),
    the quantity it opened, and the profit the close realized."""

    closed: float
    opened: float
    realized: float


# A NamedTuple built without its generated `__new__`: four bookings per fill on the event path.
_new_tuple = tuple.__new__

# What a booked fill left in an account (`Account.booked`): the account's cash, fees and realized
# profit, and the position's quantity, entry price, margin, realized profit and fees.
Booked = tuple[float, float, float, float, float, float, float, float]
# The venue's bookings the client-side account has not taken yet, oldest first (adr/0029): each
# with the message that announces it (an `OrderFilled` with what it left, a `FundingPaid` alone).
Bookings = deque[tuple[object, Booked | None]]


class Account:
    """What every account kind shares: the booking of fills and funding, positions, equity."""

    kind: ClassVar[str]
    keeps_margin: ClassVar[bool] = False  # initial margin per position (margin accounts)

    def __init__(self, instruments: Mapping[str, Instrument], initial_cash: float) -> None:
        self.instruments = dict(instruments)
        self.initial_cash = initial_cash
        self.cash = initial_cash
        self.fees_paid = 0.0
        self.funding_paid = 0.0
        self.realized_pnl = 0.0
        self.positions = {symbol: Position(i) for symbol, i in self.instruments.items()}
        # Each position's signed quantity by symbol, kept with the positions at every booking: a
        # plain dict, since strategies read it on every bar (`StrategyContext.positions`).
        self.quantities: dict[str, float] = dict.fromkeys(self.instruments, 0.0)
        # `leverage` of each instrument, read by the sizing on every order (instruments are
        # immutable, so it never changes during a run).
        self._leverages = {symbol: self.leverage(symbol) for symbol in self.instruments}

    # --- state ---------------------------------------------------------------------------------

    def quantity(self, symbol: str) -> float:
        return self.positions[symbol].quantity

    def equity(self, marks: Marks) -> float:
        """Cash plus every open position valued at its mark (`mark * contract size` per unit)."""
        total = self.cash
        for symbol, position in self.positions.items():
            if position.quantity:
                total += a.position_value(
                    position.quantity, marks[symbol], position.instrument.contract_size
                )
        return total

    def wallet_balance(self) -> float:
        """Initial cash plus realized profit, less fees and funding: the equity with every position
        at its entry price."""
        total = self.cash
        for position in self.positions.values():
            if position.quantity:
                total += a.position_value(
                    position.quantity, position.avg_price, position.instrument.contract_size
                )
        return total

    # --- booking -------------------------------------------------------------------------------

    def book_fill(
        self, symbol: str, buy: bool, quantity: float, price: float, fee: float
    ) -> FillBooking:
        position = self.positions[symbol]
        instrument = position.instrument
        (
            self.cash,
            position.quantity,
            position.avg_price,
            position.margin,
            closed,
            opened,
            realized,
        ) = a.book_fill(
            self.cash,
            position.quantity,
            position.avg_price,
            position.margin,
            buy,
            quantity,
            price,
            fee,
            instrument.contract_size,
            instrument.leverage,
            self.keeps_margin,
        )
        self.quantities[symbol] = position.quantity
        position.fees += fee
        self.fees_paid += fee
        if closed:
            position.realized_pnl += realized
            self.realized_pnl += realized
        return _new_tuple(FillBooking, (closed, opened, realized))

    def booked(self, symbol: str) -> Booked:
        """Every value `book_fill` writes, as it stands now for `symbol`: for an account in step
        with this one to take over (`take_booked`) instead of booking the same fill again."""
        p = self.positions[symbol]
        return (
            self.cash,
            self.fees_paid,
            self.realized_pnl,
            p.quantity,
            p.avg_price,
            p.margin,
            p.realized_pnl,
            p.fees,
        )

    def take_booked(self, symbol: str, state: Booked) -> None:
        """Take what another account's booking of a fill left (`booked`). The same as booking
        that fill here, bit for bit, when this account held what the other did before it."""
        p = self.positions[symbol]
        (
            self.cash,
            self.fees_paid,
            self.realized_pnl,
            p.quantity,
            p.avg_price,
            p.margin,
            p.realized_pnl,
            p.fees,
        ) = state
        self.quantities[symbol] = p.quantity

    def apply_funding(self, symbol: str, amount: float) -> None:
        """Book a funding payment: `amount` > 0 is paid by the account, < 0 received."""
        position = self.positions[symbol]
        self.cash -= amount
        self.funding_paid += amount
        position.funding += amount

    # --- rules -----------------------------------------------------------------------------------

    def leverage(self, symbol: str) -> float:
        return 1.0

    @property
    def marks_matter(self) -> bool:
        """Whether buying power and liquidation prices depend on other instruments' marks (cross
        margin): then whoever asks must keep the marks current."""
        return False

    def reducible(self, symbol: str, buy: bool) -> float:
        """How much of an order on this side would reduce the position (the rest opens exposure)."""
        held = self.positions[symbol].quantity
        if buy:
            return -held if held < 0.0 else 0.0
        return held if held > 0.0 else 0.0

    def opening_refusal(self, symbol: str, buy: bool) -> str | None:
        """Why this account cannot open exposure on this side, or None."""
        return None

    def buying_power(self, marks: Marks) -> float:
        """What opening exposure may spend now: margin and fees (spot: the whole notional)."""
        raise NotImplementedError

    def opening_cost(self, symbol: str, notional: float, fee: float) -> float:
        return a.opening_cost(notional, fee, self._leverages[symbol])

    def quantity_for(self, symbol: str, price: float, budget: float, fee: FeeOf) -> float:
        """The quantity whose opening cost is about `budget` at `price`, before rounding: the
        estimate `budget / (price * contract size * (1 / leverage + fee rate))`."""
        instrument = self.positions[symbol].instrument
        return a.quantity_for_budget(
            budget, price, instrument.contract_size, self._leverages[symbol], fee(1.0)
        )

    def affordable(self, symbol: str, price: float, budget: float, fee: FeeOf) -> float:
        """The largest quantity on the lot grid whose opening cost does not exceed `budget`, exactly
        in floats: the estimate can overshoot by an ulp (and a fee model that is not proportional
        to notional by more), and a balance must never be overdrawn, so step down until it fits."""
        if budget <= 0.0:
            return 0.0
        instrument = self.positions[symbol].instrument
        quantity = instrument.floor_quantity(self.quantity_for(symbol, price, budget, fee))
        multiplier = instrument.contract_size
        for _ in range(64):
            if quantity <= 0.0:
                return 0.0
            notional = a.fill_notional(quantity, price, multiplier)
            cost = self.opening_cost(symbol, notional, fee(notional))
            if cost <= budget:
                return quantity
            step = instrument.lot_size
            if cost > budget * (1.0 + 1e-12):
                # Far off (a fee that is not a rate): shrink in proportion, then step by the grid.
                quantity = instrument.floor_quantity(quantity * (budget / cost))
            elif step is not None:
                quantity = instrument.floor_quantity(quantity - step)
            else:
                quantity = math.nextafter(quantity, 0.0)
        return 0.0


class CashAccount(Account):
    """A spot account in one quote currency: no leverage, no shorts, cash never below zero."""

    kind = "cash"

    def buying_power(self, marks: Marks) -> float:
        return self.cash

    def opening_refusal(self, symbol: str, buy: bool) -> str | None:
        if buy:
            return None
        return "spot: no short; a short needs a perpetual or future instrument on a margin account"


class MarginAccount(Account):
    """A derivatives account: positions in contracts at each instrument's leverage and margin mode.

    Isolated positions keep their own initial margin (what opening them took, less funding they
    paid) and are liquidated alone when it no longer covers their maintenance margin; cross positions
    are backed by the account: when its cross equity falls to their total maintenance margin, all of
    them are liquidated. Fees and funding come out of the wallet (isolated funding out of the
    position's margin)."""

    kind = "margin"
    keeps_margin = True

    def leverage(self, symbol: str) -> float:
        return self.positions[symbol].instrument.leverage

    @property
    def marks_matter(self) -> bool:
        return any(not self.is_isolated(symbol) for symbol in self.positions)

    def apply_funding(self, symbol: str, amount: float) -> None:
        super().apply_funding(symbol, amount)
        position = self.positions[symbol]
        if position.instrument.margin_mode is MarginMode.ISOLATED and position.quantity:
            position.margin = position.margin - amount

    def is_isolated(self, symbol: str) -> bool:
        return self.positions[symbol].instrument.margin_mode is MarginMode.ISOLATED

    def margin_used(self) -> float:
        """Initial margin of every open position."""
        return sum(p.margin for p in self.positions.values() if p.quantity)

    def maintenance_margin(self, symbol: str, mark: float) -> float:
        position = self.positions[symbol]
        if not position.quantity:
            return 0.0
        notional = position.notional(mark)
        tier = position.instrument.tier_for(notional)
        return notional * tier.maintenance_rate - tier.maintenance_amount

    def cross_equity(self, marks: Marks) -> float:
        """The wallet less what isolated positions hold, plus cross positions' unrealized profit:
        what backs the cross positions."""
        total = self.wallet_balance()
        for symbol, position in self.positions.items():
            if not position.quantity:
                continue
            if self.is_isolated(symbol):
                total -= position.margin
            else:
                total += position.unrealized_pnl(marks[symbol])
        return total

    def buying_power(self, marks: Marks) -> float:
        """Available margin: the cross equity less the initial margin cross positions use."""
        total = self.cross_equity(marks)
        for symbol, position in self.positions.items():
            if position.quantity and not self.is_isolated(symbol):
                total -= position.margin
        return total

    def margin_ratio(self, marks: Marks) -> float:
        """Maintenance margin over the equity backing it (1 or more: liquidation), cross positions
        together; 0 with no cross position."""
        maintenance = sum(
            self.maintenance_margin(s, marks[s])
            for s, p in self.positions.items()
            if p.quantity and not self.is_isolated(s)
        )
        if maintenance == 0.0:
            return 0.0
        equity = self.cross_equity(marks)
        return math.inf if equity <= 0.0 else maintenance / equity

    def liquidation_price(self, symbol: str, marks: Marks) -> float | None:
        """The mark at which the position would be liquidated, other marks as given; None when flat
        (`arithmetic.bracket_liquidation_price`, which the compiled order path calls too)."""
        position = self.positions[symbol]
        if not position.quantity:
            return None
        instrument = position.instrument
        if self.is_isolated(symbol):
            backing = position.margin
        else:
            # Binance's cross formula: the wallet less other positions' maintenance margin plus
            # their unrealized profit (and less what isolated positions hold).
            backing = self.cross_equity(marks) - position.unrealized_pnl(marks[symbol])
            for other, held in self.positions.items():
                if other != symbol and held.quantity and not self.is_isolated(other):
                    backing -= self.maintenance_margin(other, marks[other])
        tiers = instrument.margin_tiers or (instrument.tier_for(0.0),)
        return a.bracket_liquidation_price(
            backing,
            position.quantity * instrument.contract_size,
            position.avg_price,
            [t.maintenance_rate for t in tiers],
            [t.maintenance_amount for t in tiers],
            [t.min_notional for t in tiers],
            [t.max_notional for t in tiers],
        )
