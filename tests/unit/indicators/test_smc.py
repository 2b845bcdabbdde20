"""Smart Money Concepts on hand-made bars: each event at the bar where it becomes known."""

from __future__ import annotations

import numpy as np

from backtester.indicators import smc, smc_zones

NAN = np.nan


def bars(highs: list[float], lows: list[float]) -> tuple[np.ndarray, ...]:
    high, low = np.array(highs), np.array(lows)
    middle = (high + low) / 2
    return middle, high, low, middle


def test_a_swing_high_is_known_swing_length_bars_after_its_pivot() -> None:
    _, high, low, _ = bars([1, 2, 5, 3, 2, 1, 1], [0, 1, 4, 2, 1, 0, 0])
    found = smc.swings(high, low, swing_length=2)
    np.testing.assert_array_equal(found.high, [NAN, NAN, NAN, NAN, 5.0, NAN, NAN])
    assert smc_zones.swing_points(high, low, 2).filter(kind="high").row(0) == (2, 4, "high", 5.0)


def test_a_bullish_gap_forms_on_its_third_bar_and_is_mitigated_when_price_returns() -> None:
    open_ = np.array([10.0, 10.5, 13.0, 12.5, 11.5])
    close = np.array([10.5, 13.0, 12.5, 12.0, 11.0])
    high = np.array([11.0, 13.2, 13.5, 12.8, 12.1])
    low = np.array([9.8, 10.4, 12.0, 11.9, 10.9])
    gaps = smc.fvg(open_, high, low, close)
    np.testing.assert_array_equal(gaps.direction, [0, 0, 1, 0, 0])
    assert (gaps.top[2], gaps.bottom[2]) == (12.0, 11.0)  # low of bar 2, high of bar 0
    np.testing.assert_array_equal(gaps.mitigated, [0, 0, 0, 1, 0])  # bar 3's low 11.9 <= 12
    np.testing.assert_array_equal(gaps.bull_top, [NAN, NAN, 12.0, NAN, NAN])
    zones = smc_zones.fvg_zones(open_, high, low, close)
    assert zones.row(0) == (2, 0, 1.0, 12.0, 11.0, 3)


def structure_bars() -> tuple[np.ndarray, ...]:
    # Swing high at 2 (10), confirmed at 4; swing low at 4 (7), confirmed at 6. Bar 6 closes above
    # 10: the first break, a bullish BOS. Bar 7 closes below 7, against the trend: a bearish CHoCH.
    # Swing low at 7 (5), confirmed at 9; bar 11 closes below 5, with the trend: a bearish BOS.
    highs = [8, 9, 10, 9, 8, 9, 11, 7, 7, 8, 7, 5, 5]
    lows = [7, 8, 9, 8, 7, 8, 10, 5, 6, 7, 6, 3, 3]
    closes = [7.5, 8.5, 9.5, 8.5, 7.5, 8.5, 10.5, 6, 6.5, 7.5, 6.5, 4, 4]
    high, low, close = (np.array(v, dtype=float) for v in (highs, lows, closes))
    return high, low, close


def test_breaks_of_structure_and_changes_of_character() -> None:
    high, low, close = structure_bars()
    found = smc.structure(high, low, close, swing_length=2)
    assert np.flatnonzero(found.bos).tolist() == [6, 11]
    assert np.flatnonzero(found.choch).tolist() == [7]
    assert (found.bos[6], found.choch[7], found.bos[11]) == (1.0, -1.0, -1.0)
    assert (found.level[6], found.swing_at[6]) == (10.0, 2.0)
    assert (found.level[7], found.swing_at[7]) == (7.0, 4.0)
    assert (found.level[11], found.swing_at[11]) == (5.0, 7.0)
    np.testing.assert_array_equal(found.trend, [0] * 6 + [1] + [-1] * 6)
    breaks = smc_zones.structure_breaks(high, low, close, 2)
    assert breaks["kind"].to_list() == ["bos", "choch", "bos"]


def test_an_order_block_is_the_extreme_candle_between_the_swing_and_the_break() -> None:
    high, low, close = structure_bars()
    blocks = smc.order_blocks(close, high, low, close, np.ones(len(close)), swing_length=2)
    assert np.flatnonzero(blocks.direction).tolist() == [6, 7, 11]
    # Between the pivot at 2 and the break at 6, bar 4 has the lowest low (7).
    assert (blocks.block_at[6], blocks.top[6], blocks.bottom[6]) == (4.0, 8.0, 7.0)
    # Between the pivot at 4 and the break at 7, bar 6 has the highest high (11).
    assert (blocks.block_at[7], blocks.top[7], blocks.bottom[7]) == (6.0, 11.0, 10.0)
    assert blocks.volume[6] == 3.0
    # Bar 7's low (5) goes below the bullish block's bottom (7): invalidated there.
    assert blocks.mitigated[7] == 1.0
    assert blocks.bull_top[6] == 8.0 and np.isnan(blocks.bull_top[7])
    assert blocks.bear_top[7] == 11.0


def test_equal_highs_form_a_pool_that_a_higher_high_sweeps() -> None:
    highs = [1, 2, 10, 2, 1, 2, 10.005, 2, 1, 2, 11, 2]
    lows = [0.5, 1, 1.5, 1, 0.6, 1, 1.5, 1, 0.3, 1, 1.5, 1]
    pools = smc.liquidity(np.array(highs), np.array(lows), swing_length=2, tolerance=0.001)
    # The second swing high (10.005, within 0.1 % of 10) is confirmed at 8: a pool of two.
    assert np.flatnonzero(pools.direction).tolist() == [8]
    assert pools.members[8] == 2.0 and pools.level[8] == (10 + 10.005) / 2
    assert np.flatnonzero(pools.swept_highs).tolist() == [10]


def test_previous_day_high_and_low_arrive_with_the_next_days_first_bar() -> None:
    hour = 3_600 * 10**9
    ts = np.array([0, 12, 24, 30, 48], dtype=np.int64) * hour
    high = np.array([5.0, 6.0, 5.5, 7.0, 6.0])
    low = np.array([4.0, 3.0, 4.5, 4.0, 2.0])
    found = smc.previous_high_low(high, low, ts)
    np.testing.assert_array_equal(found.high, [NAN, NAN, 6.0, 6.0, 7.0])
    np.testing.assert_array_equal(found.low, [NAN, NAN, 3.0, 3.0, 4.0])
    np.testing.assert_array_equal(found.broken_high, [NAN, NAN, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(found.broken_low, [NAN, NAN, 0.0, 0.0, 1.0])
