"""The booking arithmetic, as plain functions of floats: the one definition every account, module and
compiled kernel uses. The compiled order path (`compiled/signal_path.py`) calls these functions by
name: numba compiles them into the kernel as they are (`compiled.jit.with_numba_twins`), so the
kernel and the accounts run the same code. Only floats, bools and tuples of them go in and out (and, for brackets, columns of floats).

Every account kind books a fill the same way: its notional flows through `cash` (a buy pays it, a
sell receives it; fees are paid on top), and each position keeps its signed quantity and average
entry price. Equity is then `cash + sum(quantity * mark * contract_size)` for spot holdings and
linear contracts alike (adr/0017). Each function is one fixed sequence of IEEE operations, so a
replay gives the same floats bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# A column of floats: a sequence in the accounts, an array in the compiled kernel.
Floats: TypeAlias = "Sequence[float] | npt.NDArray[np.float64]"


def fill_notional(quantity: float, price: float, multiplier: float) -> float:
    """The value a fill moves: `quantity * price * contract size` (for spot, the size is 1)."""
    return quantity * price * multiplier


def cash_after_fill(cash: float, buy: bool, notional: float, fee: float) -> float:
    """A buy pays its notional and fee; a sell receives its notional less the fee."""
    if buy:
        return cash - (notional + fee)
    return cash + (notional - fee)


def position_value(quantity: float, mark: float, multiplier: float) -> float:
    """What a signed position adds to equity at `mark`."""
    return quantity * (mark * multiplier)


def position_after_fill(
    held: float, avg_price: float, buy: bool, quantity: float, price: float
) -> tuple[float, float, float]:
    """(new signed quantity, new average entry price, quantity that closed the old position).

    A fill on the side of the position (or from flat) averages into the entry price; a fill against
    it closes up to the position at the old entry price, and what is left opens the other side at
    the fill price: one fill that crosses zero is a close and an open in one step."""
    new_held = held + quantity if buy else held - quantity
    if held == 0.0 or (held > 0.0) == buy:
        return new_held, (avg_price * abs(held) + quantity * price) / abs(new_held), 0.0
    closed = min(quantity, abs(held))
    if new_held == 0.0:
        return new_held, 0.0, closed
    if (new_held > 0.0) != (held > 0.0):
        return new_held, price, closed
    return new_held, avg_price, closed


def book_fill(
    cash: float,
    held: float,
    avg_price: float,
    margin: float,
    buy: bool,
    quantity: float,
    price: float,
    fee: float,
    multiplier: float,
    leverage: float,
    keeps_margin: bool,
) -> tuple[float, float, float, float, float, float, float]:
    """One fill booked into a position (`held` at `avg_price`, holding `margin`) and the cash:
    (cash, signed quantity, average entry price, margin, quantity closed, quantity opened, profit
    the close realized). Only a margin account (`keeps_margin`) keeps initial margin per position."""
    notional = fill_notional(quantity, price, multiplier)
    cash = cash_after_fill(cash, buy, notional, fee)
    new_held, new_avg_price, closed = position_after_fill(held, avg_price, buy, quantity, price)
    realized = realized_pnl(held, avg_price, price, closed, multiplier) if closed != 0.0 else 0.0
    opened = quantity - closed if closed != 0.0 else quantity
    if keeps_margin:
        opened_notional = fill_notional(opened, price, multiplier)
        margin = margin_after_fill(margin, held, closed, opened_notional, leverage)
    return cash, new_held, new_avg_price, margin, closed, opened, realized


def realized_pnl(
    held: float, avg_price: float, price: float, closed: float, multiplier: float
) -> float:
    """The profit of closing `closed` of a position `held` entered at `avg_price`, at `price`."""
    gain = (price - avg_price) * closed if held > 0.0 else (avg_price - price) * closed
    return gain * multiplier


def margin_after_fill(
    margin: float, held: float, closed: float, opened_notional: float, leverage: float
) -> float:
    """Initial margin a position keeps after a fill: closing `closed` of `held` releases its share
    of the margin; opening `opened_notional` of exposure adds that notional over the leverage."""
    if closed > 0.0:
        margin = 0.0 if closed >= abs(held) else margin * (1.0 - closed / abs(held))
    if opened_notional > 0.0:
        margin = margin + opened_notional / leverage
    return margin


def opening_cost(notional: float, fee: float, leverage: float) -> float:
    """What opening exposure of `notional` takes from buying power: its margin and the fee (with
    leverage 1, as on spot, the whole notional)."""
    return notional / leverage + fee


def quantity_for_budget(
    budget: float, price: float, multiplier: float, leverage: float, fee_rate: float
) -> float:
    """The quantity whose opening cost (margin and a fee of `fee_rate`) is about `budget`, before
    any rounding: `budget / (price * contract size * (1 / leverage + fee rate))`."""
    return budget / (price * multiplier * (1.0 / leverage + fee_rate))


def isolated_liquidation_price(
    margin: float, quantity: float, entry: float, rate: float, amount: float
) -> float:
    """Binance USDⓈ-M's isolated liquidation price for a position of signed `quantity` (in base
    units) entered at `entry` with `margin`, in the bracket (`rate`, `amount`):
    `(WB + cum - side * Q * EP) / (Q * MMR - side * Q)` (adr/0017). A result <= 0 is never reached."""
    side = 1.0 if quantity > 0.0 else -1.0
    size = abs(quantity)
    return (margin + amount - side * size * entry) / (size * rate - side * size)


def bracket_liquidation_price(
    backing: float,
    quantity: float,
    entry: float,
    rates: Floats,
    amounts: Floats,
    min_notionals: Floats,
    max_notionals: Floats,
) -> float:
    """The liquidation price of a position of signed `quantity` (in base units) backed by `backing`,
    under maintenance brackets given column by column, in order (rate, amount, lower and upper
    notional of each; at least one): the price of the bracket containing the position's notional at
    that price. The maintenance margin is continuous across brackets, so exactly one is consistent."""
    price = 0.0
    last = len(rates) - 1
    for t in range(last + 1):
        price = isolated_liquidation_price(backing, quantity, entry, rates[t], amounts[t])
        notional = abs(quantity) * price
        below = notional < max_notionals[t] or t == last
        if below and (notional >= min_notionals[t] or t == 0):
            return price
    return price


def bankruptcy_price(entry: float, backing: float, size: float, long: bool) -> float:
    """Where a position of `size` (quantity times contract size, unsigned) entered at `entry` has
    lost all of `backing`."""
    return entry + (-backing if long else backing) / size


def liquidation_fill_price(mark: float, bankrupt: float, long: bool) -> float:
    """A liquidation fills at the mark where the liquidation price was reached, or at the bankruptcy
    price when the mark is past it (as the exchange's insurance fund would take it):
    `max(mark, bankrupt)` for a long, `min(mark, bankrupt)` for a short."""
    if long:
        return bankrupt if bankrupt > mark else mark
    return bankrupt if bankrupt < mark else mark


def liquidation_fee(
    rate: float, quantity: float, multiplier: float, price: float, left: float
) -> float:
    """The liquidation fee on the notional closed, from what margin is `left` after the close (none
    when nothing is): `min(rate * |quantity| * size * price, max(left, 0))`."""
    charge = rate * abs(quantity) * multiplier * price
    floor = 0.0 if left < 0.0 else left
    return floor if floor < charge else charge
