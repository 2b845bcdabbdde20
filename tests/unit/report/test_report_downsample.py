"""Down-sampling keeps every extreme a chart could show."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from backtester.report.downsample import (
    MAX_CANDLES,
    MAX_EMBEDDED_CANDLES,
    NS_PER_MINUTE,
    candle_interval,
    candle_levels,
    downsample_ohlc,
    m4_indices,
)


def _bars(closes: list[float], spread: list[float], step_ns: int = NS_PER_MINUTE) -> pl.DataFrame:
    close = np.asarray(closes)
    open_ = np.concatenate(([close[0]], close[:-1]))
    width = np.asarray(spread)
    return pl.DataFrame(
        {
            "ts": 1_700_000_000 * 10**9 + np.arange(len(close), dtype=np.int64) * step_ns,
            "open": open_,
            "high": np.maximum(open_, close) + width,
            "low": np.minimum(open_, close) - width,
            "close": close,
            "volume": np.ones(len(close)),
        }
    )


prices = st.lists(st.floats(100.0, 200.0), min_size=2, max_size=400)


@settings(max_examples=40, deadline=None)
@given(
    prices.flatmap(
        lambda c: st.tuples(
            st.just(c), st.lists(st.floats(0.0, 5.0), min_size=len(c), max_size=len(c))
        )
    ),
    st.sampled_from([3, 5, 15, 60]),
)
def test_buckets_keep_first_open_last_close_and_every_extreme(
    data: tuple[list[float], list[float]], minutes: int
) -> None:
    bars = _bars(*data)
    candles = downsample_ohlc(bars, minutes * NS_PER_MINUTE)
    bucket = bars["ts"] // (minutes * NS_PER_MINUTE) * (minutes * NS_PER_MINUTE)
    expected = (
        bars.with_columns(bucket.alias("b"))
        .group_by("b", maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
        )
    )
    assert candles["ts"].to_list() == expected["b"].to_list()
    for column in ("open", "high", "low", "close"):
        assert candles[column].to_list() == expected[column].to_list()
    assert candles["high"].max() == bars["high"].max()
    assert candles["low"].min() == bars["low"].min()
    assert candles["volume"].sum() == bars["volume"].sum()


def test_bars_already_as_coarse_as_the_interval_are_returned_unchanged() -> None:
    bars = _bars([100.0, 101.0, 99.0], [1.0, 1.0, 1.0], step_ns=60 * NS_PER_MINUTE)
    assert downsample_ohlc(bars, 60 * NS_PER_MINUTE).equals(bars)


def test_candle_interval_is_the_smallest_nice_interval_within_the_budget() -> None:
    minute = NS_PER_MINUTE
    month = np.arange(30_900, dtype=np.int64) * minute
    year = np.arange(525_600, dtype=np.int64) * minute
    assert candle_interval(month[:2_000], minute, max_candles=3_000) == minute
    assert candle_interval(month, minute, max_candles=3_000) == 15 * minute
    assert candle_interval(year, minute, max_candles=3_000) == 240 * minute
    assert candle_interval(year, minute, max_candles=10_000) == 60 * minute


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=3_000), st.integers(1, 50))
def test_m4_keeps_first_last_min_max_and_stays_within_four_points_per_bucket(
    values: list[float], buckets: int
) -> None:
    array = np.asarray(values)
    keep = m4_indices(array, max_buckets=buckets)
    assert len(keep) <= max(4 * buckets, len(array) if len(array) <= 4 * buckets else 0)
    assert np.all(np.diff(keep) > 0)
    assert keep[0] == 0 and keep[-1] == len(array) - 1
    assert array[keep].max() == array.max()
    assert array[keep].min() == array.min()


def test_m4_keeps_each_buckets_extremes() -> None:
    rng = np.random.Generator(np.random.PCG64(3))
    values = np.cumsum(rng.normal(size=100_000))
    keep = m4_indices(values, max_buckets=1_000)
    bucket = np.arange(len(values)) * 1_000 // len(values)
    for b in (0, 17, 500, 999):
        members = np.flatnonzero(bucket == b)
        kept = np.intersect1d(keep, members)
        assert values[kept].max() == values[members].max()
        assert values[kept].min() == values[members].min()


def test_levels_refine_from_the_whole_run_down_to_the_bars_within_the_budget() -> None:
    minute = NS_PER_MINUTE
    month = _bars([100.0 + (i % 7) for i in range(30_900)], [0.5] * 30_900)
    intervals = [interval for interval, _ in candle_levels(month, minute)]
    assert intervals == [15 * minute, 5 * minute, 3 * minute, minute]
    year = pl.DataFrame({"ts": np.arange(525_600, dtype=np.int64) * minute}).with_columns(
        open=pl.lit(1.0), high=pl.lit(2.0), low=pl.lit(0.5), close=pl.lit(1.5), volume=pl.lit(1.0)
    )
    levels = candle_levels(year, minute)
    assert [i // minute for i, _ in levels] == [240, 120, 60, 30, 15]
    assert sum(c.height for _, c in levels) <= MAX_EMBEDDED_CANDLES
    assert levels[0][1].height <= MAX_CANDLES
