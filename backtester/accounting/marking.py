"""Marking an account to market bar by bar, as plain functions of floats: the one definition the
equity curve's pass (`compiled.drawdown.mark_to_market`) and the compiled order path's loop
(`compiled.signal_path`) compile into their kernels, so the equity a run digests and the equity
frame it shows are the same arithmetic. The running drawdown state is passed in and handed back
(peak, deepest drawdown, the first underwater row of the current run, the longest time under
water, the bars with a position held)."""

from __future__ import annotations

import math

import numpy as np


def mark_bar(
    i: int,
    now: int,
    before: int,
    cash: float,
    held: float,
    unit_value: float,
    peak: float,
    deepest: float,
    start: int,
    since: int,
    longest: int,
    exposed: int,
) -> tuple[float, float, float, float, float, int, int, int, int]:
    """Bar `i` (at time `now`, the bar before it at `before`) of an account holding `cash` and
    `held` units worth `unit_value` each: (position value `0.0 + held * unit_value`, as summed over
    instruments from zero; equity `cash + position value`; drawdown in percent
    `100 * (equity / running peak - 1)`) and the drawdown state after it (`since`: the time of the
    bar before `start`). The running peak is np.maximum.accumulate's (a NaN carries forward); a
    peak of 0 gives numpy's x / 0.0. The times come as integers, not as the timeline: an array
    passed per bar would be reference-counted per bar in a compiled loop."""
    if held != 0.0:
        exposed += 1
    value = 0.0 + held * unit_value
    equity = cash + value
    if i == 0 or math.isnan(equity) or (not math.isnan(peak) and equity > peak):
        peak = equity
    if peak == 0.0:
        below = -np.inf if equity < 0.0 else np.nan
        percent = below
    else:
        below = equity / peak - 1.0
        percent = 100.0 * below
    if math.isnan(below) or (not math.isnan(deepest) and below < deepest):
        deepest = below
    underwater = equity < peak
    if underwater and start < 0:
        start = i
        since = before
    elif not underwater and start >= 0:
        longest = max(longest, now - since)
        start = -1
    return value, equity, percent, peak, deepest, start, since, longest, exposed


def longest_under_water(last: int, start: int, since: int, longest: int) -> int:
    """The longest time from a peak to recovery once every bar is marked (`last`: the last
    timestamp): a run still under water counts to it."""
    if start >= 0:
        return max(longest, last - since)
    return longest
