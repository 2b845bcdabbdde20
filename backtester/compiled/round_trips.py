"""Groups fills into round trips (flat -> position -> flat), one pass over the fills."""

from __future__ import annotations

import numpy as np

from backtester.compiled.jit import kernel


def group_round_trips(
    symbol: np.ndarray,
    buy: np.ndarray,
    price: np.ndarray,
    quantity: np.ndarray,
    fee: np.ndarray,
    *,
    compiled: bool = True,
) -> tuple[np.ndarray, ...]:
    """`symbol` holds codes 0..k-1. Returns, per trade (closed ones in the order they closed, then
    the still-open ones in the order they opened): symbol code, index of the opening fill, index of
    the closing fill (-1 if open), quantity bought, sold, cost, proceeds, fees, peak |position|,
    and the position still held. `compiled=False` runs the same loop as plain Python."""
    n = len(symbol)
    # Allocated by numpy, not in the kernel, whose own allocations fault in page by page.
    ints = np.zeros((3, n), np.int64)
    state = np.zeros((n, 7))
    loop = _group if compiled else _group.py_func
    trades = loop(symbol, buy, price, quantity, fee, ints, state)
    result = state[:trades]
    return (
        *ints[:, :trades],
        result[:, 1].copy(),
        result[:, 2].copy(),
        result[:, 3].copy(),
        result[:, 4].copy(),
        result[:, 5].copy(),
        result[:, 6].copy(),
        result[:, 0].copy(),
    )


@kernel(
    "int64("
    "int64[::1], boolean[::1], float64[::1], float64[::1], float64[::1], "
    "int64[:, ::1], float64[:, ::1]"
    ")"
)
def _group(
    symbol: np.ndarray,
    buy: np.ndarray,
    price: np.ndarray,
    quantity: np.ndarray,
    fee: np.ndarray,
    out_ints: np.ndarray,
    out_state: np.ndarray,
) -> int:
    """The loop of `group_round_trips`; returns the number of trades written."""
    n = len(symbol)
    k = 0
    for i in range(n):
        k = max(k, symbol[i] + 1)
    is_open = np.zeros(k, np.bool_)
    opened_at = np.zeros(k, np.int64)
    state = np.zeros((k, 7))  # held, bought, sold, cost, proceeds, fees, peak
    trades = 0
    for i in range(n):
        s = symbol[i]
        if not is_open[s]:
            is_open[s] = True
            opened_at[s] = i
            state[s, :] = 0.0
        q = quantity[i]
        if buy[i]:
            state[s, 0] += q
            state[s, 1] += q
            state[s, 3] += q * price[i]
        else:
            state[s, 0] -= q
            state[s, 2] += q
            state[s, 4] += q * price[i]
        state[s, 5] += fee[i]
        state[s, 6] = max(state[s, 6], abs(state[s, 0]))
        if state[s, 0] == 0.0:
            out_ints[0, trades] = s
            out_ints[1, trades] = opened_at[s]
            out_ints[2, trades] = i
            out_state[trades, :] = state[s, :]
            trades += 1
            is_open[s] = False
    # Still open at the end, in the order they opened (as a dict keyed by symbol would list them).
    order = np.argsort(opened_at, kind="mergesort")
    for s in order:
        if is_open[s]:
            out_ints[0, trades] = s
            out_ints[1, trades] = opened_at[s]
            out_ints[2, trades] = -1
            out_state[trades, :] = state[s, :]
            trades += 1
    return trades
