"""Down-sampling for charts that must stay small without hiding a spike.

Candles are merged into buckets of a "nice" interval (5m, 1h, 1d...) the way an exchange builds a higher
timeframe: first open, highest high, lowest low, last close. Lines keep, per bucket, the first, lowest,
highest and last point (M4), so every peak and trough a pixel could show survives, and so do the first
and last values.
"""

from __future__ import annotations

import numpy as np
import polars as pl

NS_PER_MINUTE = 60 * 10**9
# Candle intervals a trader reads without arithmetic; the smallest that fits the budget is chosen.
NICE_INTERVALS_NS = tuple(
    minutes * NS_PER_MINUTE
    for minutes in (1, 3, 5, 15, 30, 60, 120, 240, 360, 720, 1440, 2880, 10080, 20160, 43200)
)
# Candles drawn at once: more than a screen's width resolves, few enough to redraw instantly.
MAX_CANDLES = 3_000
# Candles embedded over all zoom levels (about 64 bytes each in the page).
MAX_EMBEDDED_CANDLES = 80_000
MAX_LINE_BUCKETS = 10_000


def candle_interval(ts_ns: np.ndarray, bar_interval_ns: int, max_candles: int = MAX_CANDLES) -> int:
    """The smallest interval, at least the bar interval, giving at most `max_candles` buckets."""
    if len(ts_ns) == 0:
        return bar_interval_ns
    span = int(ts_ns[-1] - ts_ns[0]) + bar_interval_ns
    for interval in (bar_interval_ns, *NICE_INTERVALS_NS):
        if interval >= bar_interval_ns and -(-span // interval) <= max_candles:
            return interval
    return -(-span // max_candles)


def candle_levels(
    bars: pl.DataFrame,
    bar_interval_ns: int,
    max_candles: int = MAX_CANDLES,
    budget: int = MAX_EMBEDDED_CANDLES,
) -> list[tuple[int, pl.DataFrame]]:
    """(interval, candles) from the coarsest level, which shows the whole run within `max_candles`,
    down through finer nice intervals while all levels together stay within `budget`; the bars
    themselves are the finest level when they fit. The chart shows the finest level whose visible
    candles fit `max_candles`, so zooming in reveals detail down to what was embedded."""
    ts = bars["ts"].to_numpy()
    coarsest = candle_interval(ts, bar_interval_ns, max_candles)
    levels = [(coarsest, downsample_ohlc(bars, coarsest))]
    total = levels[0][1].height
    finer = [i for i in NICE_INTERVALS_NS if bar_interval_ns < i < coarsest]
    for interval in [*reversed(finer), bar_interval_ns] if coarsest > bar_interval_ns else []:
        candles = downsample_ohlc(bars, interval)
        total += candles.height
        if total > budget:
            break
        levels.append((interval, candles))
    return levels


def downsample_ohlc(bars: pl.DataFrame, interval_ns: int) -> pl.DataFrame:
    """Bars (`ts` int64 ns, open/high/low/close/volume) merged into buckets aligned to epoch multiples
    of `interval_ns`; `ts` is the bucket's open time. Returns the bars unchanged when they are already
    that coarse."""
    frame = bars.select("ts", "open", "high", "low", "close", "volume")
    if frame.height < 2 or int(np.diff(frame["ts"].to_numpy()).min()) >= interval_ns:
        return frame
    return (
        frame.with_columns((pl.col("ts") // interval_ns * interval_ns).alias("bucket"))
        .group_by("bucket", maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
        .rename({"bucket": "ts"})
    )


def m4_indices(values: np.ndarray, max_buckets: int = MAX_LINE_BUCKETS) -> np.ndarray:
    """Sorted row indices to keep: per bucket of consecutive rows, the first, min, max and last."""
    n = len(values)
    if n <= 4 * max_buckets:
        return np.arange(n)
    bucket = np.arange(n, dtype=np.int64) * max_buckets // n
    starts = np.flatnonzero(np.diff(bucket, prepend=-1))
    ends = np.append(starts[1:], n) - 1
    frame = pl.DataFrame({"bucket": bucket, "value": values})
    extremes = frame.group_by("bucket", maintain_order=True).agg(
        pl.col("value").arg_min().alias("low"), pl.col("value").arg_max().alias("high")
    )
    low = starts + extremes["low"].to_numpy()
    high = starts + extremes["high"].to_numpy()
    return np.unique(np.concatenate((starts, ends, low, high)))
