"""Smart Money Concepts, causal by construction: every array holds at row t what is known at the
close of bar t, and nothing else.

- `swings`: swing highs and lows, confirmed `swing_length` bars after the pivot (the confirmation
  lag is the parameter: a pivot needs bars after it to be a pivot);
- `fvg`: fair value gaps, at the third bar of the gap, and their mitigation;
- `structure`: breaks of structure (BOS) and changes of character (CHoCH) of confirmed swings;
- `order_blocks`: the last opposite candle before each break, and its mitigation;
- `liquidity`: pools of equal swing highs or lows, and their sweeps;
- `previous_high_low`: the previous day's (week's, ...) high and low, and whether they broke.

Events are numbers at the row where they become known (+1 bullish, -1 bearish, 0 none; levels
NaN when nothing happened). The tables with the rows of zones and their later mitigation, for
charts and analysis after a run, are in `backtester.indicators.smc_zones`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import polars as pl

from backtester.compiled import smc as kernels
from backtester.compiled import ta_oscillators
from backtester.indicators._inputs import Column, as_columns, empty_like, period
from backtester.indicators.sessions import nanoseconds, session_ids

__all__ = [
    "FairValueGaps",
    "Liquidity",
    "OrderBlocks",
    "PreviousHighLow",
    "Structure",
    "Swings",
    "fvg",
    "liquidity",
    "order_blocks",
    "previous_high_low",
    "structure",
    "swings",
]


class Swings(NamedTuple):
    """The level of a swing high (low) at the row it is confirmed; its pivot is `swing_length`
    rows earlier. NaN elsewhere."""

    high: np.ndarray
    low: np.ndarray


class FairValueGaps(NamedTuple):
    direction: np.ndarray  # +1 bullish / -1 bearish gap completed by this bar, else 0
    top: np.ndarray  # the gap's upper edge, at the bar that completes it
    bottom: np.ndarray
    mitigated: np.ndarray  # gaps whose edge this bar reached
    bull_top: np.ndarray  # the latest bullish gap not yet mitigated after this bar (NaN: none)
    bull_bottom: np.ndarray
    bear_top: np.ndarray
    bear_bottom: np.ndarray


class Structure(NamedTuple):
    bos: np.ndarray  # +1 / -1 break of structure at this bar, else 0
    choch: np.ndarray  # +1 / -1 change of character at this bar, else 0
    level: np.ndarray  # the swing level broken
    swing_at: np.ndarray  # the row of the broken swing's pivot
    trend: np.ndarray  # +1 / -1 after this bar (0 before the first break)


class OrderBlocks(NamedTuple):
    direction: np.ndarray  # +1 / -1 block fixed by a break at this bar, else 0
    top: np.ndarray
    bottom: np.ndarray
    block_at: np.ndarray  # the row of the block's candle
    volume: np.ndarray  # volume of the breaking bar and the two before it
    mitigated: np.ndarray  # blocks invalidated at this bar (price beyond their far edge)
    bull_top: np.ndarray  # the latest bullish block still valid after this bar (NaN: none)
    bull_bottom: np.ndarray
    bear_top: np.ndarray
    bear_bottom: np.ndarray


class Liquidity(NamedTuple):
    direction: np.ndarray  # +1 pool of equal highs / -1 of equal lows formed or grown here, else 0
    level: np.ndarray  # the pool's mean level
    members: np.ndarray  # how many swings the pool holds
    swept_highs: np.ndarray  # pools of equal highs a high beyond them swept at this bar
    swept_lows: np.ndarray


class PreviousHighLow(NamedTuple):
    high: np.ndarray  # the previous period's high (NaN in the first period)
    low: np.ndarray
    broken_high: np.ndarray  # 1 once this period's high has gone above it, else 0
    broken_low: np.ndarray


def swings(high: Column, low: Column, swing_length: int = 5) -> Swings:
    """A swing high is a bar whose high is the highest of the 2 x `swing_length` bars from
    `swing_length - 1` before it to `swing_length` after it (the window of the
    smartmoneyconcepts package); it is known once those later bars have closed. Swing lows
    mirror it. Equal highs in one window are all swing highs."""
    h, low_ = as_columns(high=high, low=low)
    n = period("swing_length", swing_length, minimum=1)
    window = 2 * n
    highest, lowest = empty_like(h), empty_like(low_)
    ta_oscillators.rolling_max(h, 0, window, highest)
    ta_oscillators.rolling_min(low_, 0, window, lowest)
    swing_high, swing_low = empty_like(h), empty_like(low_)
    if len(h) > n:
        pivot_high, pivot_low = h[:-n], low_[:-n]
        is_high = pivot_high == highest[n:]
        is_low = pivot_low == lowest[n:]
        swing_high[n:] = np.where(is_high, pivot_high, np.nan)
        swing_low[n:] = np.where(is_low, pivot_low, np.nan)
    return Swings(swing_high, swing_low)


def fvg(open: Column, high: Column, low: Column, close: Column) -> FairValueGaps:
    """Fair value gaps: three bars where the third's low is above the first's high after a rising
    middle bar (bullish; the gap is [high of the first, low of the third]), or the third's high is
    below the first's low after a falling one (bearish). Known at the third bar. A bullish gap is
    mitigated by the first later bar whose low reaches its top; a bearish one by a high reaching
    its bottom."""
    o, h, low_, c = as_columns(open=open, high=high, low=low, close=close)
    gaps = _gaps(o, h, low_, c)
    n = len(c)
    direction = np.zeros(n)
    top, bottom = empty_like(c), empty_like(c)
    direction[gaps.rows] = gaps.direction
    top[gaps.rows] = gaps.top
    bottom[gaps.rows] = gaps.bottom
    bull, bear = gaps.direction > 0, gaps.direction < 0
    up = _mitigation(gaps.rows[bull], gaps.top[bull], low_, falling=True, inclusive=True)
    down = _mitigation(gaps.rows[bear], gaps.bottom[bear], h, falling=False, inclusive=True)
    bull_top, bull_bottom = _latest(up.latest, gaps.top[bull], gaps.bottom[bull])
    bear_top, bear_bottom = _latest(down.latest, gaps.top[bear], gaps.bottom[bear])
    return FairValueGaps(
        direction,
        top,
        bottom,
        up.per_bar + down.per_bar,
        bull_top,
        bull_bottom,
        bear_top,
        bear_bottom,
    )


def structure(
    high: Column, low: Column, close: Column, swing_length: int = 5, close_break: bool = True
) -> Structure:
    """Breaks of structure and changes of character: a close (`close_break=False`: a high or low)
    beyond the latest confirmed swing high or low. With the trend it is a BOS, against it a CHoCH;
    the first break sets the trend. Swings count from their confirmation, `swing_length` bars after
    the pivot."""
    return _structure(high, low, close, swing_length, close_break)[0]


def order_blocks(
    open: Column,
    high: Column,
    low: Column,
    close: Column,
    volume: Column,
    swing_length: int = 5,
    close_mitigation: bool = False,
) -> OrderBlocks:
    """Order blocks: at each bullish break of structure (see `structure`), the candle with the
    lowest low between the broken swing's pivot and the break; at each bearish one, the candle
    with the highest high. A bullish block is invalidated by a later low below its bottom (with
    `close_mitigation`: the lower of open and close), a bearish one by a high above its top."""
    o, h, low_, c, v = as_columns(open=open, high=high, low=low, close=close, volume=volume)
    _, raw = _structure(h, low_, c, swing_length, True)
    block, top, bottom, block_at = raw
    rows = np.flatnonzero(block)
    direction = block[rows]
    bull, bear = direction > 0, direction < 0
    falling_price = np.minimum(o, c) if close_mitigation else low_
    rising_price = np.maximum(o, c) if close_mitigation else h
    up = _mitigation(rows[bull], bottom[rows][bull], falling_price, falling=True, inclusive=False)
    down = _mitigation(rows[bear], top[rows][bear], rising_price, falling=False, inclusive=False)
    bull_top, bull_bottom = _latest(up.latest, top[rows][bull], bottom[rows][bull])
    bear_top, bear_bottom = _latest(down.latest, top[rows][bear], bottom[rows][bear])
    traded = empty_like(v)
    traded[rows] = [float(v[max(0, r - 2) : r + 1].sum()) for r in rows]
    return OrderBlocks(
        block,
        top,
        bottom,
        block_at,
        traded,
        up.per_bar + down.per_bar,
        bull_top,
        bull_bottom,
        bear_top,
        bear_bottom,
    )


def liquidity(
    high: Column, low: Column, swing_length: int = 5, tolerance: float = 0.001
) -> Liquidity:
    """Liquidity pools: swing highs (lows) within `tolerance` of each other, relative to the level
    (0.001: 0.1 %), confirmed as swings are. A pool forms when a swing lands within tolerance of an
    earlier swing that price has not yet taken out, and grows with each further one; it is swept
    by the first bar whose high (low) goes beyond its most extreme member."""
    h, low_ = as_columns(high=high, low=low)
    if not tolerance >= 0.0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    found = swings(h, low_, swing_length)
    highs = _pools(h, found.high, float(tolerance), 1.0)
    lows = _pools(-low_, -found.low, float(tolerance), -1.0)
    direction = highs[0] - lows[0]
    level = np.where(lows[0] > 0, lows[1], highs[1])
    members = np.where(lows[0] > 0, lows[2], highs[2])
    return Liquidity(direction, level, members, highs[3], lows[3])


def previous_high_low(
    high: Column, low: Column, timestamps: Any, timeframe: str = "1d"
) -> PreviousHighLow:
    """The high and low of the previous period that had bars (UTC-aligned `timeframe`: "1d",
    "4h", ..., or "1w" from Monday), known from the first bar of the next period; and whether the
    current period has traded beyond them so far."""
    h, low_ = as_columns(high=high, low=low)
    ts = nanoseconds(timestamps)
    if len(ts) != len(h):
        raise ValueError(f"timestamps has {len(ts)} rows, the bars {len(h)}")
    frame = pl.DataFrame({"session": session_ids(ts, timeframe), "high": h, "low": low_})
    periods = frame.group_by("session", maintain_order=True).agg(
        pl.col("high").max().alias("period_high"), pl.col("low").min().alias("period_low")
    )
    previous = periods.with_columns(
        pl.col("period_high").shift(1).alias("previous_high"),
        pl.col("period_low").shift(1).alias("previous_low"),
    ).select("session", "previous_high", "previous_low")
    joined = frame.join(previous, on="session", how="left", maintain_order="left").with_columns(
        pl.col("high").cum_max().over("session").alias("so_far_high"),
        pl.col("low").cum_min().over("session").alias("so_far_low"),
    )
    previous_high = joined["previous_high"].fill_null(np.nan).to_numpy()
    previous_low = joined["previous_low"].fill_null(np.nan).to_numpy()
    so_far_high = joined["so_far_high"].to_numpy()
    so_far_low = joined["so_far_low"].to_numpy()
    with np.errstate(invalid="ignore"):
        broken_high = np.where(np.isnan(previous_high), np.nan, so_far_high > previous_high)
        broken_low = np.where(np.isnan(previous_low), np.nan, so_far_low < previous_low)
    return PreviousHighLow(
        np.ascontiguousarray(previous_high),
        np.ascontiguousarray(previous_low),
        broken_high.astype(np.float64),
        broken_low.astype(np.float64),
    )


# --- shared by the functions above and by smc_zones -------------------------------------------


class Gaps(NamedTuple):
    rows: np.ndarray  # the completing bar of each gap, ascending
    direction: np.ndarray
    top: np.ndarray
    bottom: np.ndarray


class Mitigation(NamedTuple):
    mitigated_at: np.ndarray  # per zone: the row that mitigated it, -1 if none yet
    per_bar: np.ndarray  # zones mitigated at each bar
    latest: np.ndarray  # per bar: the latest open zone's position, -1 if none


def _gaps(o: np.ndarray, h: np.ndarray, low: np.ndarray, c: np.ndarray) -> Gaps:
    if len(c) < 3:
        empty = np.zeros(0)
        return Gaps(np.zeros(0, dtype=np.int64), empty, empty, empty)
    rising = c[1:-1] > o[1:-1]
    falling = c[1:-1] < o[1:-1]
    bull = (low[2:] > h[:-2]) & rising
    bear = (h[2:] < low[:-2]) & falling
    rows = np.flatnonzero(bull | bear) + 2
    is_bull = bull[rows - 2]
    direction = np.where(is_bull, 1.0, -1.0)
    top = np.where(is_bull, low[rows], low[rows - 2])
    bottom = np.where(is_bull, h[rows - 2], h[rows])
    return Gaps(rows.astype(np.int64), direction, top, bottom)


def _mitigation(
    rows: np.ndarray, threshold: np.ndarray, price: np.ndarray, *, falling: bool, inclusive: bool
) -> Mitigation:
    mitigated_at = np.full(len(rows), -1, dtype=np.int64)
    count = np.zeros(len(price))
    latest = np.full(len(price), -1, dtype=np.int64)
    kernels.mitigate_zones(
        np.ascontiguousarray(rows, dtype=np.int64),
        np.ascontiguousarray(threshold, dtype=np.float64),
        np.ascontiguousarray(price, dtype=np.float64),
        falling,
        inclusive,
        mitigated_at,
        count,
        latest,
    )
    return Mitigation(mitigated_at, count, latest)


def _latest(
    latest: np.ndarray, top: np.ndarray, bottom: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    known = latest >= 0
    upper, lower = np.full(len(latest), np.nan), np.full(len(latest), np.nan)
    upper[known] = top[latest[known]]
    lower[known] = bottom[latest[known]]
    return upper, lower


def _structure(
    high: Column, low: Column, close: Column, swing_length: int, close_break: bool
) -> tuple[Structure, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    h, low_, c = as_columns(high=high, low=low, close=close)
    found = swings(h, low_, swing_length)
    n = len(c)
    bos, choch, trend, block = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    level, swing_at = empty_like(c), empty_like(c)
    block_top, block_bottom, block_at = empty_like(c), empty_like(c), empty_like(c)
    kernels.market_structure(
        h,
        low_,
        c,
        found.high,
        found.low,
        int(swing_length),
        bool(close_break),
        bos,
        choch,
        level,
        swing_at,
        trend,
        block,
        block_top,
        block_bottom,
        block_at,
    )
    return Structure(bos, choch, level, swing_at, trend), (block, block_top, block_bottom, block_at)


def _pools(
    price: np.ndarray, levels: np.ndarray, tolerance: float, restore: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = len(price)
    pool, members, swept = np.zeros(n), np.zeros(n), np.zeros(n)
    level = np.full(n, np.nan)
    kernels.liquidity_pools(
        np.ascontiguousarray(price),
        np.ascontiguousarray(levels),
        restore,
        tolerance,
        pool,
        level,
        members,
        swept,
    )
    return pool, level, members, swept
