"""Where a bar's path reaches a price, as a plain function of floats: the compiled order path
watches a margin position's liquidation price with it (numba compiles it into the kernel, as it
does `accounting.arithmetic`), where the venue asks `orders.touch` on the same path."""

from __future__ import annotations

import math


def reach_price(
    open_: float, high: float, low: float, close: float, level: float, below: bool, whole: bool
) -> float:
    """The price `orders.touch` gives on a bar's path from its start, as plain floats for the
    compiled kernels: the open where it is at or past `level` already, else (`whole`: over the rest
    of the bar) `level` where a later point of the path reaches it; NaN where it is not reached. On
    finite prices the order of the extremes changes only the time of the touch, never whether or at
    what price (a test checks this against `touch` on both paths)."""
    if (open_ <= level) if below else (open_ >= level):
        return open_
    if whole:
        if below and (low <= level or high <= level or close <= level):
            return level
        if not below and (high >= level or low >= level or close >= level):
            return level
    return math.nan
