"""Groups fills into round trips (flat -> long or short -> flat), one pass over the fills.

A fill that crosses zero closes one trade and opens the next: the part up to flat (and that share of
its fee) goes to the closing trade, the rest opens the new one on the other side. A funding payment
belongs to the trade open on its instrument when it is paid.
"""

from __future__ import annotations

import math

import numpy as np

from backtester.compiled.jit import kernel

# Columns of the per-trade float state.
HELD, ENTRY_QTY, EXIT_QTY, ENTRY_VALUE, EXIT_VALUE, FEES, PEAK, FUNDING = range(8)


def group_round_trips(
    symbol: np.ndarray,
    buy: np.ndarray,
    price: np.ndarray,
    quantity: np.ndarray,
    fee: np.ndarray,
    multiplier: np.ndarray,
    funding_symbol: np.ndarray,
    funding_amount: np.ndarray,
    funding_after: np.ndarray,
    *,
    compiled: bool = True,
) -> tuple[np.ndarray, ...]:
    """`symbol` holds codes 0..k-1; `multiplier[code]` is the instrument's contract size. Funding
    payment j (`funding_symbol`, `funding_amount`) was booked after the first `funding_after[j]`
    fills. Returns, per trade (closed ones in the order they closed, then the still-open ones in
    the order they opened): symbol code, side (+1 long, -1 short), index of the opening fill, index
    of the closing fill (-1 if open), then floats: quantity entered, exited, value entered
    (quantity * price * size), value exited, fees, peak |position|, funding paid, and the position
    still held. `compiled=False` runs the same loop as plain Python."""
    n = len(symbol)
    # Allocated by numpy, not in the kernel, whose own allocations fault in page by page. A fill
    # closes at most one trade, and opens at most one. Not zeroed: the loop writes every cell of
    # the trades it returns, and the cells past them are never read (nor touched, when fresh).
    # A row per value, a column per trade: each value's row is returned as it is, no copy.
    ints = np.empty((4, n + 1), np.int64)
    state = np.empty((8, n + 1))
    loop = _group if compiled else _group.py_func
    trades = loop(
        symbol,
        buy,
        price,
        quantity,
        fee,
        multiplier,
        funding_symbol,
        funding_amount,
        funding_after,
        ints,
        state,
    )
    return (
        *ints[:, :trades],
        *(state[value, :trades] for value in (1, 2, 3, 4, 5, 6, 7, 0)),
    )


@kernel(
    "int64("
    "int64[::1], boolean[::1], float64[::1], float64[::1], float64[::1], float64[::1], "
    "int64[::1], float64[::1], int64[::1], int64[:, ::1], float64[:, ::1]"
    ")"
)
def _group(
    symbol: np.ndarray,
    buy: np.ndarray,
    price: np.ndarray,
    quantity: np.ndarray,
    fee: np.ndarray,
    multiplier: np.ndarray,
    funding_symbol: np.ndarray,
    funding_amount: np.ndarray,
    funding_after: np.ndarray,
    out_ints: np.ndarray,
    out_state: np.ndarray,
) -> int:
    """The loop of `group_round_trips`; returns the number of trades written."""
    n = len(symbol)
    k = len(multiplier)
    is_open = np.zeros(k, np.bool_)
    side = np.zeros(k, np.int64)
    opened_at = np.zeros(k, np.int64)
    state = np.zeros((k, 8))
    trades = 0
    j = 0
    payments = len(funding_symbol)
    for i in range(n + 1):
        # Funding booked before fill i goes to the trade open then (none open: nobody paid it).
        while j < payments and funding_after[j] <= i:
            s = funding_symbol[j]
            if is_open[s]:
                state[s, FUNDING] += funding_amount[j]
            j += 1
        if i == n:
            break
        s = symbol[i]
        q = quantity[i]
        p = price[i]
        size = multiplier[s]
        direction = 1 if buy[i] else -1
        if not is_open[s]:
            is_open[s] = True
            side[s] = direction
            opened_at[s] = i
            # Cell by cell, here and below: a slice of a row would be an array made, reference
            # counted and broadcast into for each fill.
            for c in range(8):
                state[s, c] = 0.0
        rest = 0.0
        closing_fee = 0.0
        if direction == side[s]:
            state[s, HELD] += q if buy[i] else -q
            state[s, ENTRY_QTY] += q
            state[s, ENTRY_VALUE] += q * p * size
            state[s, FEES] += fee[i]
        else:
            held = abs(state[s, HELD])
            closing = q
            closing_fee = fee[i]
            if q > held:
                closing = held
                closing_fee = fee[i] * (held / q)
                rest = q - held
            state[s, HELD] += closing if buy[i] else -closing
            state[s, EXIT_QTY] += closing
            state[s, EXIT_VALUE] += closing * p * size
            state[s, FEES] += closing_fee
            if rest > 0.0:
                state[s, HELD] = (
                    0.0  # crossed zero: flat exactly, and the rest opens the next trade
                )
        state[s, PEAK] = max(state[s, PEAK], abs(state[s, HELD]))
        if state[s, HELD] == 0.0:
            out_ints[0, trades] = s
            out_ints[1, trades] = side[s]
            out_ints[2, trades] = opened_at[s]
            out_ints[3, trades] = i
            for c in range(8):
                out_state[c, trades] = state[s, c]
            trades += 1
            is_open[s] = False
            if rest > 0.0:
                is_open[s] = True
                side[s] = direction
                opened_at[s] = i
                for c in range(8):
                    state[s, c] = 0.0
                state[s, HELD] = rest if buy[i] else -rest
                state[s, ENTRY_QTY] = rest
                state[s, ENTRY_VALUE] = rest * p * size
                state[s, FEES] = fee[i] - closing_fee
                state[s, PEAK] = rest
    # Still open at the end, in the order they opened (as a dict keyed by symbol would list them).
    order = np.argsort(opened_at, kind="mergesort")
    for s in order:
        if is_open[s]:
            out_ints[0, trades] = s
            out_ints[1, trades] = side[s]
            out_ints[2, trades] = opened_at[s]
            out_ints[3, trades] = -1
            for c in range(8):
                out_state[c, trades] = state[s, c]
            trades += 1
    return trades


@kernel("void(int64[::1], int64[::1], float64[::1], float64[::1], float64[::1], float64[::1])")
def range_extremes(
    first: np.ndarray,
    last: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    lowest: np.ndarray,
    highest: np.ndarray,
) -> None:
    """For each span of bars `first[k]..last[k]` (both included): the lowest low and the highest
    high, as numpy's min and max of the slices give them (a NaN in the span is the result)."""
    for k in range(len(first)):
        a, b = first[k], last[k]
        lo = low[a]
        for i in range(a + 1, b + 1):
            if math.isnan(lo):
                break
            v = low[i]
            if v < lo or math.isnan(v):
                lo = v
        hi = high[a]
        for i in range(a + 1, b + 1):
            if math.isnan(hi):
                break
            v = high[i]
            if v > hi or math.isnan(v):
                hi = v
        lowest[k] = lo
        highest[k] = hi


@kernel("void(int64[::1], int64[::1], int64[::1])")
def count_at_or_before(ts: np.ndarray, keys: np.ndarray, out: np.ndarray) -> None:
    """`np.searchsorted(ts, keys, side="right")` for ascending `keys`, by one merge over both:
    a year of bar times is 4 MB, and a binary search per key misses the cache at every step."""
    j = 0
    n = len(ts)
    for k in range(len(keys)):
        key = keys[k]
        while j < n and ts[j] <= key:
            j += 1
        out[k] = j
