"""Smart Money Concepts loops for `backtester.indicators.smc`: market structure, liquidity pools and
the mitigation of zones. Each reads bars in order and writes what is known at the bar it reaches:
swing points arrive at their confirmation row (`swing_length` bars after the pivot), so nothing
written at row t depends on a row after t.
"""

from __future__ import annotations

import math

import numpy as np

from backtester.compiled.jit import kernel

F = "float64[::1]"


@kernel(
    f"void({F}, {F}, {F}, {F}, {F}, int64, boolean, {F}, {F}, {F}, {F}, {F}, {F}, {F}, {F}, {F})"
)
def market_structure(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    swing_high: np.ndarray,
    swing_low: np.ndarray,
    lag: int,
    close_break: bool,
    bos: np.ndarray,
    choch: np.ndarray,
    level: np.ndarray,
    swing_at: np.ndarray,
    trend: np.ndarray,
    block: np.ndarray,
    block_top: np.ndarray,
    block_bottom: np.ndarray,
    block_at: np.ndarray,
) -> None:
    """Breaks of the latest confirmed swing high (low) by a close (or a high / low) beyond it.

    A break in the direction of the trend is a break of structure (BOS), against it a change of
    character (CHoCH); the first break sets the trend and counts as a BOS. Each swing breaks once;
    a newer confirmed swing replaces an unbroken older one. The break also fixes the order block:
    the bar with the lowest low (bullish; highest high when bearish) between the swing pivot and
    the breaking bar, the latest such bar on ties, or the bar before the break when none lies
    between. `swing_high[t]` / `swing_low[t]` hold a level confirmed at t, pivot t - lag.
    Outputs arrive zeroed (bos, choch, trend, block) or NaN (the levels and rows)."""
    n = len(close)
    high_level = 0.0
    high_pivot = -1
    high_open = False
    low_level = 0.0
    low_pivot = -1
    low_open = False
    direction = 0.0
    for t in range(n):
        if not math.isnan(swing_high[t]):
            high_level = swing_high[t]
            high_pivot = t - lag
            high_open = True
        if not math.isnan(swing_low[t]):
            low_level = swing_low[t]
            low_pivot = t - lag
            low_open = True
        rising = close[t] if close_break else high[t]
        falling = close[t] if close_break else low[t]
        if high_open and rising > high_level:
            if direction < 0:
                choch[t] = 1.0
            else:
                bos[t] = 1.0
            direction = 1.0
            high_open = False
            level[t] = high_level
            swing_at[t] = high_pivot
            chosen = t - 1
            if t - high_pivot > 1:
                chosen = high_pivot + 1
                for k in range(high_pivot + 2, t):
                    if low[k] <= low[chosen]:
                        chosen = k
            block[t] = 1.0
            block_top[t] = high[chosen]
            block_bottom[t] = low[chosen]
            block_at[t] = chosen
        elif low_open and falling < low_level:
            if direction > 0:
                choch[t] = -1.0
            else:
                bos[t] = -1.0
            direction = -1.0
            low_open = False
            level[t] = low_level
            swing_at[t] = low_pivot
            chosen = t - 1
            if t - low_pivot > 1:
                chosen = low_pivot + 1
                for k in range(low_pivot + 2, t):
                    if high[k] >= high[chosen]:
                        chosen = k
            block[t] = -1.0
            block_top[t] = high[chosen]
            block_bottom[t] = low[chosen]
            block_at[t] = chosen
        trend[t] = direction


@kernel(
    "void(int64[::1], float64[::1], float64[::1], boolean, boolean, int64[::1], float64[::1], "
    "int64[::1])"
)
def mitigate_zones(
    formed: np.ndarray,
    threshold: np.ndarray,
    price: np.ndarray,
    falling: bool,
    inclusive: bool,
    mitigated_at: np.ndarray,
    count: np.ndarray,
    latest: np.ndarray,
) -> None:
    """Zones formed at rows `formed` (ascending) are mitigated on the first later bar whose `price`
    reaches their `threshold`: at or below it when `falling` (below it unless `inclusive`), at or
    above it otherwise. Writes each zone's mitigation row (`mitigated_at`, arriving as -1), the
    zones mitigated at each bar (`count`, zeroed) and the latest zone still open after each bar
    (`latest`: its position in `formed`, or -1). Zones wait in a heap keyed by threshold, so a bar
    pops only the zones it mitigates."""
    n = len(price)
    m = len(formed)
    keys = np.empty(m)
    ids = np.empty(m, dtype=np.int64)
    size = 0
    stack = np.empty(m, dtype=np.int64)
    depth = 0
    following = 0
    sign = 1.0 if falling else -1.0
    for j in range(n):
        reach = sign * price[j]
        while size > 0 and (reach <= keys[0] if inclusive else reach < keys[0]):
            mitigated_at[ids[0]] = j
            count[j] += 1.0
            size -= 1
            keys[0] = keys[size]
            ids[0] = ids[size]
            at = 0
            while True:
                left = 2 * at + 1
                if left >= size:
                    break
                bigger = left
                if left + 1 < size and keys[left + 1] > keys[left]:
                    bigger = left + 1
                if keys[bigger] <= keys[at]:
                    break
                keys[at], keys[bigger] = keys[bigger], keys[at]
                ids[at], ids[bigger] = ids[bigger], ids[at]
                at = bigger
        while following < m and formed[following] == j:
            at = size
            keys[at] = sign * threshold[following]
            ids[at] = following
            size += 1
            while at > 0:
                parent = (at - 1) // 2
                if keys[parent] >= keys[at]:
                    break
                keys[at], keys[parent] = keys[parent], keys[at]
                ids[at], ids[parent] = ids[parent], ids[at]
                at = parent
            stack[depth] = following
            depth += 1
            following += 1
        while depth > 0 and mitigated_at[stack[depth - 1]] >= 0:
            depth -= 1
        latest[j] = stack[depth - 1] if depth > 0 else -1


@kernel(f"void({F}, {F}, float64, float64, {F}, {F}, {F}, {F})")
def liquidity_pools(
    price: np.ndarray,
    swings: np.ndarray,
    restore: float,
    tolerance: float,
    pool: np.ndarray,
    level: np.ndarray,
    members: np.ndarray,
    swept: np.ndarray,
) -> None:
    """Pools of equal swing highs (or lows: call with negated prices and levels). `swings[t]` is a
    swing level confirmed at t. A swing within `tolerance` (relative) of an open pool joins it; else
    one within tolerance of an earlier unswept swing forms a pool with it; else it waits alone. A
    bar whose `price` exceeds a pool's highest member sweeps the pool (`swept[t]` counts them); one
    that exceeds a lone swing by more than the tolerance takes it out (a slightly higher high is
    still an equal high). At a forming or growing pool's bar: `pool[t]` = 1,
    `level[t]` its mean level (times `restore`: -1 undoes the negation of lows), `members[t]` its
    size."""
    n = len(price)
    lone = np.empty(n)
    lone_count = 0
    pool_sum = np.empty(n)
    pool_top = np.empty(n)
    pool_size = np.empty(n)
    pool_open = np.zeros(n, dtype=np.bool_)
    pools = 0
    for t in range(n):
        p = price[t]
        for k in range(pools):
            if pool_open[k] and p > pool_top[k]:
                pool_open[k] = False
                swept[t] += 1.0
        kept = 0
        for k in range(lone_count):
            if not p > lone[k] + tolerance * abs(lone[k]):
                lone[kept] = lone[k]
                kept += 1
        lone_count = kept
        h = swings[t]
        if math.isnan(h):
            continue
        band = tolerance * abs(h)
        joined = -1
        for k in range(pools - 1, -1, -1):
            if pool_open[k] and abs(pool_sum[k] / pool_size[k] - h) <= band:
                joined = k
                break
        if joined < 0:
            partners = 0.0
            total = 0.0
            top = h
            kept = 0
            for k in range(lone_count):
                if abs(lone[k] - h) <= band:
                    partners += 1.0
                    total += lone[k]
                    top = max(top, lone[k])
                else:
                    lone[kept] = lone[k]
                    kept += 1
            if partners == 0.0:
                lone[lone_count] = h
                lone_count += 1
                continue
            lone_count = kept
            joined = pools
            pools += 1
            pool_sum[joined] = total
            pool_top[joined] = top
            pool_size[joined] = partners
            pool_open[joined] = True
        pool_sum[joined] += h
        pool_top[joined] = max(pool_top[joined], h)
        pool_size[joined] += 1.0
        pool[t] = 1.0
        level[t] = restore * (pool_sum[joined] / pool_size[joined])
        members[t] = pool_size[joined]
