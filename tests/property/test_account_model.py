"""The account model's books balance: for random long and short fill sequences with fees and funding,
equity is the initial cash plus realized and unrealized profit less fees and funding, and the
wallet balance is the equity with every position at its entry price."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtester.accounting.accounts import Account, CashAccount, MarginAccount
from backtester.domain.instrument import Instrument, MarginMode

PERP = Instrument("ETH/USDT:USDT", leverage=5, contract_size=0.01)
SPOT = Instrument("ETH/USDT")

prices = st.floats(50.0, 5_000.0, allow_nan=False)
quantities = st.floats(0.001, 50.0, allow_nan=False)
fees = st.floats(0.0, 2.0, allow_nan=False)
rates = st.floats(-0.003, 0.003, allow_nan=False)

steps = st.lists(
    st.one_of(
        st.tuples(st.just("fill"), st.booleans(), quantities, prices, fees),
        st.tuples(st.just("funding"), rates, prices),
    ),
    min_size=1,
    max_size=60,
)


def unrealized(account: Account, marks: dict[str, float]) -> float:
    return sum(p.unrealized_pnl(marks[s]) for s, p in account.positions.items())


def close_enough(a: float, b: float, scale: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * scale)


@settings(max_examples=150, deadline=None)
@given(steps, prices)
def test_margin_equity_is_initial_plus_realized_plus_unrealized_less_fees_and_funding(
    sequence: list[tuple[object, ...]], mark: float
) -> None:
    account = MarginAccount({PERP.symbol: PERP}, 100_000.0)
    paid_fees = paid_funding = 0.0
    for step in sequence:
        if step[0] == "fill":
            _, buy, quantity, price, fee = step
            assert isinstance(buy, bool) and isinstance(quantity, float)
            assert isinstance(price, float) and isinstance(fee, float)
            account.book_fill(PERP.symbol, buy, quantity, price, fee)
            paid_fees += fee
        else:
            _, rate, at = step
            assert isinstance(rate, float) and isinstance(at, float)
            held = account.quantity(PERP.symbol)
            amount = rate * held * PERP.contract_size * at
            account.apply_funding(PERP.symbol, amount)
            paid_funding += amount
        marks = {PERP.symbol: mark}
        expected = (
            100_000.0 + account.realized_pnl + unrealized(account, marks) - paid_fees - paid_funding
        )
        scale = 100_000.0 + abs(account.quantity(PERP.symbol)) * PERP.contract_size * 5_000.0
        assert close_enough(account.equity(marks), expected, scale)
        assert close_enough(account.wallet_balance(), expected - unrealized(account, marks), scale)
        assert account.fees_paid == pytest.approx(paid_fees, rel=1e-12, abs=1e-12)
        position = account.positions[PERP.symbol]
        if position.quantity == 0.0:
            assert position.avg_price == 0.0 and position.margin == 0.0
        else:
            assert position.avg_price > 0.0 and position.margin > -abs(paid_funding) - 1e-9


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), quantities, prices, fees), min_size=1, max_size=40), prices
)
def test_cash_account_books_balance_the_same_way_and_never_go_short(
    fills: list[tuple[bool, float, float, float]], mark: float
) -> None:
    account = CashAccount({SPOT.symbol: SPOT}, 1e9)
    for buy, asked, price, fee in fills:
        held = account.quantity(SPOT.symbol)
        # What a venue lets through on spot: a sell of at most what is held.
        quantity = asked if buy else min(asked, account.reducible(SPOT.symbol, buy))
        if quantity <= 0.0:
            assert account.opening_refusal(SPOT.symbol, False) is not None
            continue
        account.book_fill(SPOT.symbol, buy, quantity, price, fee)
        assert account.quantity(SPOT.symbol) >= -1e-9 * max(held, 1.0)
        marks = {SPOT.symbol: mark}
        expected = 1e9 + account.realized_pnl + unrealized(account, marks) - account.fees_paid
        assert close_enough(account.equity(marks), expected, 1e9)


def test_a_fill_through_zero_realizes_the_old_side_and_enters_the_new_at_the_fill_price() -> None:
    account = MarginAccount({PERP.symbol: PERP}, 10_000.0)
    account.book_fill(PERP.symbol, True, 100.0, 2_000.0, 0.0)
    booking = account.book_fill(PERP.symbol, False, 300.0, 2_100.0, 0.0)
    assert (booking.closed, booking.opened) == (100.0, 200.0)
    assert booking.realized == pytest.approx(100.0 * 100.0 * PERP.contract_size)
    position = account.positions[PERP.symbol]
    assert (position.quantity, position.avg_price) == (-200.0, 2_100.0)
    # The new short's margin is its own notional over the leverage; the long's was released.
    assert position.margin == pytest.approx(200.0 * 2_100.0 * PERP.contract_size / 5)


def test_available_margin_counts_cross_profit_but_not_isolated_profit() -> None:
    cross = Instrument("BTC/USDT:USDT", leverage=4, margin_mode="cross")
    isolated = Instrument("ETH/USDT:USDT", leverage=2)
    account = MarginAccount({cross.symbol: cross, isolated.symbol: isolated}, 10_000.0)
    account.book_fill(cross.symbol, True, 0.1, 40_000.0, 0.0)  # margin 1,000
    account.book_fill(isolated.symbol, False, 1.0, 2_000.0, 0.0)  # margin 1,000
    marks = {cross.symbol: 42_000.0, isolated.symbol: 1_800.0}
    # wallet 10,000 - isolated margin 1,000 + cross profit 200 - cross margin 1,000
    assert account.buying_power(marks) == pytest.approx(8_200.0)
    assert account.equity(marks) == pytest.approx(10_000.0 + 200.0 + 200.0)


def _state(account: Account) -> dict[str, object]:
    """Everything an account holds, its positions' every slot included."""
    held = {k: v for k, v in vars(account).items() if k != "positions"}
    for symbol, position in account.positions.items():
        held[symbol] = {slot: getattr(position, slot) for slot in type(position).__slots__}
    return held


ISOLATED = Instrument("BTC/USDT:USDT", leverage=10)
CROSS = Instrument("XRP/USDT:USDT", leverage=20, margin_mode=MarginMode.CROSS)


@settings(max_examples=100, deadline=None)
@given(steps, st.sampled_from(["spot", "margin"]))
def test_taking_a_booking_leaves_what_booking_the_fill_again_would(
    sequence: list[tuple[object, ...]], kind: str
) -> None:
    """adr/0029: the client-side account takes what the venue's booking left instead of booking
    the fill again; both must leave every field of the account and its positions the same."""
    instruments = {SPOT.symbol: SPOT}
    if kind == "margin":
        instruments = {i.symbol: i for i in (PERP, ISOLATED, CROSS)}
    symbols = list(instruments)

    def make() -> Account:
        if kind == "spot":
            return CashAccount(instruments, 1e9)
        return MarginAccount(instruments, 100_000.0)

    venue, booked_again, taken = make(), make(), make()
    for k, step in enumerate(sequence):
        symbol = symbols[k % len(symbols)]
        if step[0] == "fill":
            _, buy, quantity, price, fee = step
            assert isinstance(buy, bool) and isinstance(quantity, float)
            assert isinstance(price, float) and isinstance(fee, float)
            if kind == "spot" and not buy and quantity > venue.quantity(symbol):
                quantity = venue.quantity(symbol)  # spot: never short
                if quantity <= 0.0:
                    continue
            venue.book_fill(symbol, buy, quantity, price, fee)
            booked_again.book_fill(symbol, buy, quantity, price, fee)
            taken.take_booked(symbol, venue.booked(symbol))
        else:
            _, rate, at = step
            assert isinstance(rate, float) and isinstance(at, float)
            amount = rate * venue.quantity(symbol) * at
            for account in (venue, booked_again, taken):
                account.apply_funding(symbol, amount)
        assert _state(taken) == _state(booked_again) == _state(venue)
