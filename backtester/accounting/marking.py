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
    ts: np.ndarray,
    cash: float,
    held: float,
    unit_value: float,
    peak: float,
    deepest: float,
    start: int,
    longest: int,
    exposed: int,
) -> tuple[float, float, float, float, float, int, int, int]:
    """Bar `i` (at `ts[i]`) of an account holding `cash` and `held` units worth `unit_value`
    each: (position value `0.0 + held * unit_value`, as summed over instruments from zero; equity
    `cash + position value`; drawdown in percent `100 * (equity / running peak - 1)`) and the
    drawdown state after it. The running peak is np.maximum.accumulate's (a NaN carries forward);
    a peak of 0 gives numpy's x / 0.0."""
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
    elif not underwater and start >= 0:
        longest = max(longest, ts[i] - ts[start - 1])
        start = -1
    return value, equity, percent, peak, deepest, start, longest, exposed


def longest_under_water(ts: np.ndarray, start: int, longest: int) -> int:
    """The longest time from a peak to recovery once every bar is marked: a run still under water
    counts to the last timestamp."""
    if start >= 0:
        recovered: int = ts[len(ts) - 1] - ts[start - 1]
        return max(longest, recovered)
    return longest
