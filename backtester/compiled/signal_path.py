"""The compiled order path: a `SignalPlan` run bar by bar in one loop, with the exact arithmetic of
the event-driven modules (strategy -> risk -> venue -> ledger), for the configurations it covers
(`backtester.engine.compiled_path.unsupported` says which).

The booking arithmetic is not written here: the loop calls the functions of
`backtester.accounting.arithmetic` that the accounts call (numba compiles them into the kernel), so
sizing, cash and positions are the same code. What is left here is the order flow of a plan (which
order when, what a denial quotes), in the order the modules run it; the identity tests run both
paths and compare digests.
"""

from __future__ import annotations

import numpy as np

from backtester.accounting.arithmetic import (
    book_fill,
    fill_notional,
    opening_cost,
    quantity_for_budget,
)
from backtester.compiled.jit import kernel

# Order outcomes.
FILLED, DENIED, CANCELED = 0, 1, 2
# Why an order did not fill (the message is written by the caller, from `order_value`).
NO_REASON = 0
DENIED_NO_CASH = 1  # the risk engine: nothing available to spend
DENIED_BELOW_MIN_NOTIONAL = 2
DENIED_ABOVE_MAX_NOTIONAL = 3
CANCELED_SIZED_TO_ZERO = 4  # the venue: the fraction bought or sold nothing at the fill price
CANCELED_END_OF_DATA = 5


def simulate(
    signal: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    entry_fraction: float,
    exit_fraction: float,
    initial_cash: float,
    fee_rate: float,
    slip: float,
    min_notional: float,
    max_notional: float,
    trade_on_close: bool,
    *,
    compiled: bool = True,
) -> tuple[np.ndarray, ...]:
    """Run the plan. `slip` is the fixed slippage as a fraction (bps * 1e-4, 0 for none); notional
    limits are NaN when absent (a comparison with NaN is false, as a missing limit never denies).
    `compiled=False` runs the same loop as plain Python.

    Returns, in this order: per order its submission row, side (+1 buy, -1 sell), outcome, reason,
    the value its denial message quotes, the row it closed on, filled quantity and filled notional;
    per fill its order index, row, price, quantity and fee; per bar the cash and position after
    the bar; then [fees paid]."""
    n = len(signal)
    capacity = int(np.count_nonzero(signal))
    # Allocated here, not in the kernel: numpy backs large arrays with huge pages, while memory the
    # kernel allocated would be faulted in page by page, which costs more than the loop itself.
    order_ints = np.zeros((5, capacity), np.int64)  # row, side, outcome, reason, closing row
    order_floats = np.zeros((3, capacity))  # quoted value, filled quantity, filled notional
    fill_ints = np.zeros((2, capacity), np.int64)  # order index, row
    fill_floats = np.zeros((3, capacity))  # price, quantity, fee
    cash_at, position_at = np.empty((2, n))  # one block: see results.build_result
    money = np.array([initial_cash, 0.0, 0.0, 0.0])  # cash, position, fees paid, entry price
    counts = np.zeros(2, np.int64)  # orders, fills
    loop = _run_plan if compiled else _run_plan.py_func
    loop(
        signal,
        open_,
        close,
        entry_fraction,
        exit_fraction,
        fee_rate,
        slip,
        min_notional,
        max_notional,
        trade_on_close,
        order_ints,
        order_floats,
        fill_ints,
        fill_floats,
        cash_at,
        position_at,
        money,
        counts,
    )
    orders, fills = int(counts[0]), int(counts[1])
    return (
        *order_ints[:4, :orders],
        order_floats[0, :orders],
        order_ints[4, :orders],
        order_floats[1, :orders],
        order_floats[2, :orders],
        fill_ints[0, :fills],
        fill_ints[1, :fills],
        *fill_floats[:, :fills],
        cash_at,
        position_at,
        money[2:3],
    )


@kernel(
    "void("
    "int8[::1], float64[::1], float64[::1], float64, float64, float64, float64, "
    "float64, float64, boolean, int64[:, ::1], float64[:, ::1], int64[:, ::1], "
    "float64[:, ::1], float64[::1], float64[::1], float64[::1], int64[::1]"
    ")"
)
def _run_plan(
    signal: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    entry_fraction: float,
    exit_fraction: float,
    fee_rate: float,
    slip: float,
    min_notional: float,
    max_notional: float,
    trade_on_close: bool,
    order_ints: np.ndarray,
    order_floats: np.ndarray,
    fill_ints: np.ndarray,
    fill_floats: np.ndarray,
    cash_at: np.ndarray,
    position_at: np.ndarray,
    money: np.ndarray,
    counts: np.ndarray,
) -> None:
    """The loop of `simulate`, writing into the arrays it is given. `money` holds the balances
    (cash, position, fees paid, entry price) as one array so the helpers below can book into it."""
    n = len(signal)

    # A spot instrument on a cash account: one unit per contract, no leverage.
    multiplier = 1.0
    leverage = 1.0

    def affordable(price: float, budget: float) -> float:
        # Account.affordable without a lot grid: the largest quantity whose opening cost fits the
        # budget, in floats (the estimate can overshoot by an ulp: step down until it fits).
        if budget <= 0.0:
            return 0.0
        quantity = quantity_for_budget(budget, price, multiplier, leverage, fee_rate)
        while quantity > 0.0:
            notional = fill_notional(quantity, price, multiplier)
            if opening_cost(notional, notional * fee_rate, leverage) <= budget:
                return quantity
            quantity = np.nextafter(quantity, 0.0)
        return 0.0

    def submit(i: int, buy: bool) -> int:
        # The strategy's order and the risk engine's checks on it; the order index if accepted,
        # else -1. Nothing else is reserved: this path never has two orders open at once.
        k: int = counts[0]
        counts[0] += 1
        order_ints[0, k] = i
        order_ints[1, k] = 1 if buy else -1
        order_ints[4, k] = i
        price = close[i]
        if buy:
            available = money[0] - 0.0
            if available <= 0:
                order_ints[2, k] = DENIED
                order_ints[3, k] = DENIED_NO_CASH
                order_floats[0, k] = available
                return -1
            budget = entry_fraction * available
            quantity = quantity_for_budget(budget, price, multiplier, leverage, fee_rate)
        else:
            quantity = exit_fraction * money[1]
        notional = fill_notional(quantity, price, multiplier)
        if notional < min_notional or notional > max_notional:
            order_ints[2, k] = DENIED
            below = notional < min_notional
            order_ints[3, k] = DENIED_BELOW_MIN_NOTIONAL if below else DENIED_ABOVE_MAX_NOTIONAL
            order_floats[0, k] = notional
            return -1
        return k

    def fill(k: int, i: int, base: float) -> None:
        # The venue's fill of order k on bar i at `base` (before slippage), then the ledger.
        buy = order_ints[1, k] > 0
        order_ints[4, k] = i
        cash = money[0]
        position = money[1]
        if buy:
            remaining = affordable(base, entry_fraction * cash)
        else:
            remaining = position if exit_fraction == 1.0 else exit_fraction * position
        if remaining <= 0.0:
            order_ints[2, k] = CANCELED
            order_ints[3, k] = CANCELED_SIZED_TO_ZERO
            return
        quantity = remaining
        price = base * (1.0 + slip) if buy else base * (1.0 - slip)
        if buy and price != base:
            # Sized again at the price actually paid.
            remaining = affordable(price, entry_fraction * cash)
            quantity = min(remaining, quantity)
            if quantity <= 0.0:
                order_ints[2, k] = CANCELED
                order_ints[3, k] = CANCELED_SIZED_TO_ZERO
                return
        fee = fill_notional(quantity, price, multiplier) * fee_rate
        booked = book_fill(
            cash, position, money[3], 0.0, buy, quantity, price, fee, multiplier, leverage, False
        )
        money[0] = booked[0]
        money[1] = booked[1]
        money[3] = booked[2]
        money[2] = money[2] + fee
        order_ints[2, k] = FILLED
        order_floats[1, k] = 0.0 + quantity
        order_floats[2, k] = 0.0 + quantity * price
        j = counts[1]
        counts[1] += 1
        fill_ints[0, j] = k
        fill_ints[1, j] = i
        fill_floats[0, j] = price
        fill_floats[1, j] = quantity
        fill_floats[2, j] = fee

    pending = -1  # the order resting at the venue until the next bar
    # The balances as locals between bookings: read from `money` in the loop, they would be loaded
    # again on every bar (the stores into cash_at might alias them).
    cash = money[0]
    position = money[1]
    for i in range(n):
        # The venue sees each bar before the strategy: an order from an earlier bar fills at this
        # bar's open, and the strategy then acts on the position that fill left.
        s = signal[i]
        if pending >= 0 or s != 0:
            if pending >= 0:
                fill(pending, i, open_[i])
                pending = -1
            if (s > 0 and money[1] == 0.0) or (s < 0 and money[1] > 0.0):
                k = submit(i, s > 0)
                if k >= 0:
                    if trade_on_close:
                        fill(k, i, close[i])
                    else:
                        pending = k
            cash = money[0]
            position = money[1]
        cash_at[i] = cash
        position_at[i] = position
    if pending >= 0:
        order_ints[2, pending] = CANCELED
        order_ints[3, pending] = CANCELED_END_OF_DATA
        order_ints[4, pending] = n - 1
