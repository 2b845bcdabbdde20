"""Resampling bars to a higher timeframe with polars, labelled by bar open time, without look-ahead.

A target bar opening at T aggregates exactly the source bars with T <= ts < T + target: open of the
first, highest high, lowest low, close of the last, summed volume. No source bar at or after T +
target can change it. A bucket missing some bars inside the series (an exchange gap) is kept, as the
exchange would report it; a bucket cut by the start or end of the data is dropped, since its full
bar is not known. Volume is summed in time order, so a resampled bar is bit-identical whatever
window it was read in.
"""

from __future__ import annotations

import polars as pl

from backtester.data.errors import DataError

_AGGREGATES = {
    "open": pl.col("open").first(),
    "high": pl.col("high").max(),
    "low": pl.col("low").min(),
    "close": pl.col("close").last(),
    "volume": pl.col("volume").last(),  # of the running sum, see below
}


def resample(frame: pl.DataFrame, source_ms: int, target_ms: int) -> pl.DataFrame:
    """Aggregate a sorted bar frame (`timestamp_ms` + any of open/high/low/close/volume)."""
    if target_ms % source_ms:
        raise DataError(f"cannot resample {source_ms} ms bars to {target_ms} ms: not a multiple")
    if target_ms == source_ms or frame.height == 0:
        return frame
    ts = pl.col("timestamp_ms")
    values = [_AGGREGATES[c] for c in frame.columns if c in _AGGREGATES]
    bucketed = frame.with_columns(bucket=ts - ts % target_ms)
    if "volume" in frame.columns:
        # polars' float sum picks a kernel by frame size, so a bucket could sum differently
        # depending on how much data surrounds it; a running sum is strictly left to right in
        # time, as a live aggregator adds the bars, so it is the same in every run and window.
        bucketed = bucketed.with_columns(pl.col("volume").cum_sum().over("bucket"))
    grouped = (
        bucketed.group_by("bucket", maintain_order=True)
        .agg(*values)
        .rename({"bucket": "timestamp_ms"})
    )
    first, last = frame["timestamp_ms"][0], frame["timestamp_ms"][-1]
    lower = first if first % target_ms == 0 else first - first % target_ms + target_ms
    # The last bucket is complete only if the data reaches its last source bar.
    upper = last + source_ms - (last + source_ms) % target_ms
    return grouped.filter((ts >= lower) & (ts < upper))
