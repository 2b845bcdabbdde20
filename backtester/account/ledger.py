"""The client-side ledger: books every fill and funding payment into its account (a fill by taking
what the venue's booking of it left, adr/0029), journals the state after each booking, and tells the
other modules what changed.

Money is float64 booked in a fixed order (see adr/0003): every booking is one deterministic expression
(`accounting.arithmetic`), so the ledger replays bit for bit and reconciles exactly against the fills
and payments that produced it.
"""

from __future__ import annotations

import numpy as np

from backtester.accounting.accounts import Account, Bookings
from backtester.accounting.arithmetic import position_value
from backtester.core.bus import MessageBus
from backtester.core.clock import SimClock
from backtester.domain.enums import BUY
from backtester.domain.messages import (
    AccountState,
    ContractExpired,
    FundingPaid,
    FundingRate,
    OrderFilled,
    PositionChanged,
)


class Journal:
    """The account's state after each booking, from which the equity curve is sampled.

    A booking is journaled at the clock's time: a bar's at its close, when the bar is handled
    (adr/0020). One made by a scheduled event (a funding, an expiry) at time t is marked `after`:
    it belongs after the bars that closed at t, so a state sampled at t leaves it out.

    Each booking is one row (time, after, cash, funding paid, then each instrument's quantity and
    cost basis), appended once; the columns are made when the journal is read."""

    def __init__(self, instruments: tuple[str, ...]) -> None:
        self.instruments = instruments
        self.rows: list[tuple[int | bool | float, ...]] = []

    def record(self, ts: int, account: Account, *, after: bool = False) -> None:
        positions = account.positions
        if len(self.instruments) == 1:
            position = positions[self.instruments[0]]
            quantity = position.quantity
            self.rows.append(
                (
                    ts,
                    after,
                    account.cash,
                    account.funding_paid,
                    quantity,
                    position_value(quantity, position.avg_price, position.instrument.contract_size),
                )
            )
            return
        row: list[int | bool | float] = [ts, after, account.cash, account.funding_paid]
        for symbol in self.instruments:
            position = positions[symbol]
            quantity = position.quantity
            row.append(quantity)
            row.append(
                position_value(quantity, position.avg_price, position.instrument.contract_size)
            )
        self.rows.append(tuple(row))

    def _column(self, k: int) -> list[int | bool | float]:
        return [row[k] for row in self.rows]

    @property
    def ts(self) -> list[int | bool | float]:
        return self._column(0)

    @property
    def after(self) -> list[int | bool | float]:
        return self._column(1)

    @property
    def cash(self) -> list[int | bool | float]:
        return self._column(2)

    @property
    def funding(self) -> list[int | bool | float]:
        return self._column(3)

    @property
    def positions(self) -> dict[str, list[int | bool | float]]:
        return {s: self._column(4 + 2 * k) for k, s in enumerate(self.instruments)}

    @property
    def cost_basis(self) -> dict[str, list[int | bool | float]]:
        return {s: self._column(5 + 2 * k) for k, s in enumerate(self.instruments)}


class Sampled:
    """The journal as it stood at the end of each timeline point: cash, signed positions, the
    positions valued at their entry prices, and the funding paid so far."""

    def __init__(
        self,
        cash: np.ndarray,
        positions: dict[str, np.ndarray],
        cost_basis: dict[str, np.ndarray],
        funding: np.ndarray,
    ) -> None:
        self.cash = cash
        self.positions = positions
        self.cost_basis = cost_basis
        self.funding = funding


class AccountLedger:
    def __init__(
        self,
        bus: MessageBus,
        clock: SimClock,
        account: Account,
        currency: str,
        bookings: Bookings | None = None,
    ) -> None:
        """`bookings`: the venue's, recorded as it books (adr/0029); a fill or funding payment
        the venue recorded is taken from there instead of booked again."""
        self._bus = bus
        self._bookings = bookings
        self._publish = bus.publisher()
        self._listening = bus.listening
        self._clock = clock
        self.account = account
        self.instruments = tuple(account.positions)
        self.currency = currency
        self.initial_cash = account.initial_cash
        self.journal = Journal(self.instruments)
        # The time of the latest scheduled event (funding, expiry): what is booked then follows
        # the bars that closed at that time.
        self._scheduled_at: int | None = None

    def subscribe(self, bus: MessageBus) -> None:
        bus.subscribe(OrderFilled, self.on_filled)
        bus.subscribe(FundingPaid, self.on_funding)
        bus.subscribe(FundingRate, self.on_scheduled)
        bus.subscribe(ContractExpired, self.on_scheduled)

    def on_scheduled(self, event: FundingRate | ContractExpired) -> None:
        self._scheduled_at = self._clock.now

    def on_filled(self, fill: OrderFilled) -> None:
        symbol = fill.instrument
        account = self.account
        bookings = self._bookings
        if bookings and bookings[0][0] is fill:
            state = bookings.popleft()[1]
            assert state is not None
            account.take_booked(symbol, state)
        else:
            self._out_of_step()
            account.book_fill(symbol, fill.side is BUY, fill.quantity, fill.price, fill.fee)
        now = self._clock.now
        self.journal.record(now, account, after=now == self._scheduled_at)
        listening = self._listening
        if listening.get(PositionChanged):
            position = account.positions[symbol]
            self._publish(
                PositionChanged(
                    instrument=symbol,
                    quantity=position.quantity,
                    avg_price=position.avg_price,
                    realized_pnl=account.realized_pnl,
                    ts_event=now,
                    ts_init=now,
                )
            )
        if listening.get(AccountState):
            self._publish_state(fill)

    def on_funding(self, payment: FundingPaid) -> None:
        bookings = self._bookings
        if bookings and bookings[0][0] is payment:
            bookings.popleft()
        else:
            self._out_of_step()
        self.account.apply_funding(payment.instrument, payment.amount)
        self.journal.record(self._clock.now, self.account, after=True)
        self._publish_state(None)

    @property
    def in_step(self) -> bool:
        """Whether every fill and payment so far was one the venue recorded, so its bookings were
        taken as they were (adr/0029)."""
        return self._bookings is not None

    def _out_of_step(self) -> None:
        """A fill or payment the venue did not record: this account may differ from the venue's
        from now on, so it books everything itself."""
        if self._bookings is not None:
            self._bookings.clear()
            self._bookings = None

    def _publish_state(self, fill: OrderFilled | None) -> None:
        if not self._bus.listened(AccountState):
            return
        account = self.account
        now = self._clock.now
        self._bus.publish(
            AccountState(
                currency=self.currency,
                cash=account.cash,
                fees_paid=account.fees_paid,
                realized_pnl=account.realized_pnl,
                ts_event=now,
                ts_init=now,
                fill=fill,
                funding_paid=account.funding_paid,
            )
        )

    def sample(self, timestamps: np.ndarray) -> Sampled:
        """The journal as it stood at each timestamp, once the bars closing then were booked (and
        not what scheduled events booked at that same time)."""
        rows = self.journal.rows
        width = 4 + 2 * len(self.instruments)
        # The journal's columns, transposed in one pass over its rows.
        columns = list(zip(*rows, strict=True)) if rows else [()] * width
        journal_ts = np.asarray(columns[0], dtype=np.int64)
        at = _booked_by(journal_ts, np.asarray(columns[1], dtype=bool), timestamps)
        # Each timestamp's entry, shifted by one: 0 is the state before the first booking.
        pick = at + 1

        def sampled(k: int, before: float) -> np.ndarray:
            values = np.empty(len(rows) + 1)
            values[0] = before
            values[1:] = columns[k]
            picked: np.ndarray = values[pick]
            return picked

        positions: dict[str, np.ndarray] = {}
        cost_basis: dict[str, np.ndarray] = {}
        for k, symbol in enumerate(self.instruments):
            positions[symbol] = sampled(4 + 2 * k, 0.0)
            cost_basis[symbol] = sampled(5 + 2 * k, 0.0)
        return Sampled(sampled(2, self.initial_cash), positions, cost_basis, sampled(3, 0.0))


def _booked_by(ts: np.ndarray, after: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """For each timestamp, the last journal entry booked before it, or at it by a bar (-1: none).
    Entries at one time come in delivery order: the bars closing then, then scheduled events."""
    upto = np.searchsorted(ts, timestamps, side="right") - 1
    if not after.any():
        return upto
    before = np.searchsorted(ts, timestamps, side="left") - 1
    by_bars = np.concatenate(([0], np.cumsum(~after)))
    at: np.ndarray = before + (by_bars[upto + 1] - by_bars[before + 1])
    return at
