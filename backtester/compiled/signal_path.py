"""The compiled order path: a `SignalPlan` run bar by bar in one loop, with the exact arithmetic of
the event-driven modules (strategy -> risk -> venue -> ledger), for the configurations it covers
(`backtester.compiled.run.unsupported` says which). Every expression below mirrors one in those
modules, in the same order, so the floats come out bit for bit the same; the identity tests run
both paths and compare digests.
"""

from __future__ import annotations

import numpy as np

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


@kernel
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
) -> tuple[np.ndarray, ...]:
    """Run the plan. `slip` is the fixed slippage as a fraction (bps * 1e-4, 0 for none); notional
    limits are NaN when absent (a comparison with NaN is false, as a missing limit never denies).

    Returns, in this order: per order its submission row, side (+1 buy, -1 sell), outcome, reason,
    the value its denial message quotes, the row it closed on, filled quantity and filled notional;
    per fill its order index, row, price, quantity and fee; per bar the cash and position after
    the bar; then [fees paid]."""
    n = len(signal)
    capacity = 0
    for i in range(n):
        if signal[i] != 0:
            capacity += 1
    order_row = np.zeros(capacity, np.int64)
    order_side = np.zeros(capacity, np.int8)
    order_status = np.zeros(capacity, np.int8)
    order_reason = np.zeros(capacity, np.int8)
    order_value = np.zeros(capacity, np.float64)
    order_close_row = np.zeros(capacity, np.int64)
    order_filled_qty = np.zeros(capacity, np.float64)
    order_filled_notional = np.zeros(capacity, np.float64)
    fill_order = np.zeros(capacity, np.int64)
    fill_row = np.zeros(capacity, np.int64)
    fill_price = np.zeros(capacity, np.float64)
    fill_qty = np.zeros(capacity, np.float64)
    fill_fee = np.zeros(capacity, np.float64)
    cash_at = np.empty(n, np.float64)
    position_at = np.empty(n, np.float64)

    # Balances as one array, so the helpers below can book into it: cash, position, fees paid.
    money = np.array([initial_cash, 0.0, 0.0])
    counts = np.zeros(2, np.int64)  # orders, fills
    orders_out = (order_row, order_side, order_status, order_reason, order_value, order_close_row)
    fills_out = (fill_order, fill_row, fill_price, fill_qty, fill_fee)

    def affordable(price: float, budget: float) -> float:
        # venue._affordable: the largest quantity whose notional + fee fits the budget, in floats
        # (the division can overshoot by an ulp: step down until the booked cost fits).
        if budget <= 0.0:
            return 0.0
        quantity = budget / (price * (1.0 + fee_rate))
        while quantity > 0.0:
            notional = quantity * price
            if notional + notional * fee_rate <= budget:
                return quantity
            quantity = np.nextafter(quantity, 0.0)
        return 0.0

    def submit(i: int, buy: bool) -> int:
        # The strategy's order and the risk engine's checks on it; the order index if accepted,
        # else -1. Nothing else is reserved: this path never has two orders open at once.
        k: int = counts[0]
        counts[0] += 1
        orders_out[0][k] = i
        orders_out[1][k] = 1 if buy else -1
        orders_out[5][k] = i
        price = close[i]
        if buy:
            available = money[0] - 0.0
            if available <= 0:
                orders_out[2][k] = DENIED
                orders_out[3][k] = DENIED_NO_CASH
                orders_out[4][k] = available
                return -1
            quantity = (entry_fraction * available) / (price * (1.0 + fee_rate))
        else:
            quantity = exit_fraction * money[1]
        notional = quantity * price
        if notional < min_notional or notional > max_notional:
            orders_out[2][k] = DENIED
            below = notional < min_notional
            orders_out[3][k] = DENIED_BELOW_MIN_NOTIONAL if below else DENIED_ABOVE_MAX_NOTIONAL
            orders_out[4][k] = notional
            return -1
        return k

    def fill(k: int, i: int, base: float) -> None:
        # The venue's fill of order k on bar i at `base` (before slippage), then the ledger.
        buy = orders_out[1][k] > 0
        orders_out[5][k] = i
        cash = money[0]
        position = money[1]
        if buy:
            remaining = affordable(base, entry_fraction * cash)
        else:
            remaining = position if exit_fraction == 1.0 else exit_fraction * position
        if remaining <= 0.0:
            orders_out[2][k] = CANCELED
            orders_out[3][k] = CANCELED_SIZED_TO_ZERO
            return
        quantity = remaining
        price = base * (1.0 + slip) if buy else base * (1.0 - slip)
        if buy and price != base:
            # Sized again at the price actually paid.
            remaining = affordable(price, entry_fraction * cash)
            quantity = min(remaining, quantity)
            if quantity <= 0.0:
                orders_out[2][k] = CANCELED
                orders_out[3][k] = CANCELED_SIZED_TO_ZERO
                return
        notional = quantity * price
        fee = notional * fee_rate
        if buy:
            money[0] = cash - (notional + fee)
            money[1] = position + quantity
        else:
            money[0] = cash + (notional - fee)
            money[1] = position - quantity
        money[2] = money[2] + fee
        orders_out[2][k] = FILLED
        order_filled_qty[k] = 0.0 + quantity
        order_filled_notional[k] = 0.0 + quantity * price
        j = counts[1]
        counts[1] += 1
        fills_out[0][j] = k
        fills_out[1][j] = i
        fills_out[2][j] = price
        fills_out[3][j] = quantity
        fills_out[4][j] = fee

    pending = -1  # the order resting at the venue until the next bar
    for i in range(n):
        # The venue sees each bar before the strategy: an order from an earlier bar fills at this
        # bar's open, and the strategy then acts on the position that fill left.
        if pending >= 0:
            fill(pending, i, open_[i])
            pending = -1
        s = signal[i]
        if (s > 0 and money[1] == 0.0) or (s < 0 and money[1] > 0.0):
            k = submit(i, s > 0)
            if k >= 0:
                if trade_on_close:
                    fill(k, i, close[i])
                else:
                    pending = k
        cash_at[i] = money[0]
        position_at[i] = money[1]
    if pending >= 0:
        order_status[pending] = CANCELED
        order_reason[pending] = CANCELED_END_OF_DATA
        order_close_row[pending] = n - 1

    orders = counts[0]
    fills = counts[1]
    return (
        order_row[:orders],
        order_side[:orders],
        order_status[:orders],
        order_reason[:orders],
        order_value[:orders],
        order_close_row[:orders],
        order_filled_qty[:orders],
        order_filled_notional[:orders],
        fill_order[:fills],
        fill_row[:fills],
        fill_price[:fills],
        fill_qty[:fills],
        fill_fee[:fills],
        cash_at,
        position_at,
        money[2:],
    )
