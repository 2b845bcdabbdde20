"""The drawdown profile of an equity curve in one pass."""

from __future__ import annotations

import math

import numpy as np

from backtester.accounting.marking import longest_under_water, mark_bar
from backtester.compiled.jit import kernel


@kernel("Tuple((float64, int64))(int64[::1], float64[::1])")
def drawdown_profile(ts: np.ndarray, values: np.ndarray) -> tuple[float, int]:
    """(deepest drawdown as values / running peak - 1, longest time from a peak to recovery, or to
    the last timestamp if never recovered). The running peak is np.maximum.accumulate's (a NaN
    carries forward), so the deepest drawdown equals `(values / peaks - 1.0).min()`."""
    n = len(values)
    deepest = np.inf
    longest = 0
    peak = values[0] if n else 0.0
    start = -1  # first underwater row of the current run
    for i in range(n):
        v = values[i]
        # np.maximum.accumulate: a NaN, once seen, is the peak from then on.
        if math.isnan(v) or (not math.isnan(peak) and v > peak):
            peak = v
        # numpy's x / 0.0 where the peak is 0 (kernels divide the Python way, which raises).
        drawdown = (-np.inf if v < 0.0 else np.nan) if peak == 0.0 else v / peak - 1.0
        if math.isnan(drawdown) or (not math.isnan(deepest) and drawdown < deepest):
            deepest = drawdown
        underwater = v < peak
        if underwater and start < 0:
            start = i
        elif not underwater and start >= 0:
            longest = max(longest, ts[i] - ts[start - 1])
            start = -1
    if start >= 0:
        longest = max(longest, ts[n - 1] - ts[start - 1])
    return deepest, longest


@kernel(
    "Tuple((float64, int64, int64))(int64[::1], float64[::1], float64[::1], float64[::1], "
    "float64[::1], float64[::1], float64[::1], float64[::1])"
)
def mark_to_market(
    ts: np.ndarray,
    cash: np.ndarray,
    held: np.ndarray,
    close: np.ndarray,
    position_value: np.ndarray,
    equity: np.ndarray,
    drawdown: np.ndarray,
    notional: np.ndarray,
) -> tuple[float, int, int]:
    """Position value (`0.0 + held * close`, as summed over instruments from zero), equity
    (`cash + position value`), drawdown in percent (`100 * (equity / running peak - 1)`) and the
    notional held (`0.0 + |held| * close`), in one pass, into the last four arrays (allocated by
    the caller: numpy backs large arrays with huge pages, while a kernel's own allocations fault in
    page by page). `position_value` may be `held` itself (each bar is read before it is written).
    With `position_value`, `drawdown` and `notional` empty, the equity alone is written (a run
    takes only it; the other columns wait until its equity frame is read). Returns what the
    statistics take from the same pass: `drawdown_profile(ts, equity)` and the bars with a
    position held (`held != 0`)."""
    n = len(cash)
    every_column = len(drawdown) == n
    peak = 0.0
    deepest = np.inf
    longest = 0
    start = -1  # first underwater row of the current run
    since = 0  # the time of the bar before it
    exposed = 0
    for i in range(n):
        h = held[i]
        c = close[i]
        value, e, percent, peak, deepest, start, since, longest, exposed = mark_bar(
            i,
            ts[i],
            ts[i - 1] if i else ts[0],
            cash[i],
            h,
            c,
            peak,
            deepest,
            start,
            since,
            longest,
            exposed,
        )
        equity[i] = e
        if every_column:
            position_value[i] = value
            notional[i] = 0.0 + abs(h) * c
            drawdown[i] = percent
    return deepest, longest_under_water(ts[n - 1] if n else 0, start, since, longest), exposed


@kernel("int64(int64[::1])")
def majority_step(ts: np.ndarray) -> int:
    """The step between consecutive timestamps that more than half of the steps take, or -1."""
    n = len(ts)
    if n < 2:
        return -1
    first = ts[1] - ts[0]
    same = 0
    for i in range(1, n):
        if ts[i] - ts[i - 1] == first:
            same += 1
    return first if 2 * same > n - 1 else -1
