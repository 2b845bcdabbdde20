"""Groups fills into round trips (flat -> position -> flat), one pass over the fills."""

from __future__ import annotations

import numpy as np

from backtester.compiled.jit import kernel


@kernel
def group_round_trips(
    symbol: np.ndarray, buy: np.ndarray, price: np.ndarray, quantity: np.ndarray, fee: np.ndarray
) -> tuple[np.ndarray, ...]:
    """`symbol` holds codes 0..k-1. Returns, per trade (closed ones in the order they closed, then
    the still-open ones in the order they opened): symbol code, index of the opening fill, index of
    the closing fill (-1 if open), quantity bought, sold, cost, proceeds, fees, peak |position|,
    and the position still held."""
    n = len(symbol)
    k = 0
    for i in range(n):
        k = max(k, symbol[i] + 1)
    is_open = np.zeros(k, np.bool_)
    opened_at = np.zeros(k, np.int64)
    state = np.zeros((k, 7))  # held, bought, sold, cost, proceeds, fees, peak
    out_symbol = np.zeros(n, np.int64)
    out_first = np.zeros(n, np.int64)
    out_last = np.zeros(n, np.int64)
    out_state = np.zeros((n, 7))
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
            out_symbol[trades] = s
            out_first[trades] = opened_at[s]
            out_last[trades] = i
            out_state[trades, :] = state[s, :]
            trades += 1
            is_open[s] = False
    # Still open at the end, in the order they opened (as a dict keyed by symbol would list them).
    order = np.argsort(opened_at, kind="mergesort")
    for s in order:
        if is_open[s]:
            out_symbol[trades] = s
            out_first[trades] = opened_at[s]
            out_last[trades] = -1
            out_state[trades, :] = state[s, :]
            trades += 1
    result = out_state[:trades]
    return (
        out_symbol[:trades],
        out_first[:trades],
        out_last[:trades],
        result[:, 1].copy(),
        result[:, 2].copy(),
        result[:, 3].copy(),
        result[:, 4].copy(),
        result[:, 5].copy(),
        result[:, 6].copy(),
        result[:, 0].copy(),
    )
