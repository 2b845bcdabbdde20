"""The series a perpetual needs besides its bars: mark-price candles and funding rates.

Mark candles are bars (`load_bars`) whose volume may be missing (exchanges publish none). Funding
rates are a frame `ts` (int64 UTC ns, the funding time) and float64 `rate`; a file or frame may name
the rate `funding_rate` or `rate`, or carry it in `open` as freqtrade's funding files do.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from backtester.data.bars import BarData, load_bars, read_frame
from backtester.data.columns import time_column, timestamps_ns
from backtester.data.errors import DataError

FUNDING_COLUMNS = ("funding_rate", "rate", "open")


def load_marks(source: pl.DataFrame | str | Path, *, name: str | None = None) -> BarData:
    """Mark-price candles, validated as bars; a missing or empty volume reads as zero."""
    label = name or (str(source) if not isinstance(source, pl.DataFrame) else "<DataFrame>")
    raw = read_frame(source, label)
    columns = {c.lower(): c for c in raw.columns}
    if "volume" not in columns:
        raw = raw.with_columns(pl.lit(0.0).alias("volume"))
    else:
        volume = columns["volume"]
        raw = raw.with_columns(pl.col(volume).cast(pl.Float64, strict=False).fill_null(0.0))
    return load_bars(raw, name=label)


def load_funding(source: pl.DataFrame | str | Path, *, name: str | None = None) -> pl.DataFrame:
    """Funding rates, sorted by time, one per timestamp, every rate a finite number."""
    label = name or (str(source) if not isinstance(source, pl.DataFrame) else "<DataFrame>")
    raw = read_frame(source, label)
    columns = {c.lower(): c for c in raw.columns}
    rate_column = next((columns[c] for c in FUNDING_COLUMNS if c in columns), None)
    if rate_column is None:
        raise DataError(f"{label}: no funding rate column (expected funding_rate or rate)")
    time = time_column(raw)
    if time is None:
        raise DataError(f"{label}: no timestamp column (expected timestamp_ms or timestamp)")
    frame = pl.DataFrame(
        [
            timestamps_ns(raw, time, label).alias("ts"),
            raw[rate_column].cast(pl.Float64, strict=False).alias("rate"),
        ]
    )
    if frame.height == 0:
        raise DataError(f"{label}: no funding rates")
    checks = (
        ("null, NaN or infinite rate", pl.col("rate").is_null() | ~pl.col("rate").is_finite()),
        ("null timestamp", pl.col("ts").is_null()),
        ("duplicate timestamp", pl.col("ts").diff() == 0),
        ("timestamp before the previous row (unsorted)", pl.col("ts").diff() < 0),
    )
    flags = frame.select(
        *[
            expr.fill_null(False).arg_true().first().alias(str(i))
            for i, (_, expr) in enumerate(checks)
        ]
    ).row(0)
    failures = [(row, checks[i][0]) for i, row in enumerate(flags) if row is not None]
    if failures:
        row, problem = min(failures)
        values = frame.row(row, named=True)
        raise DataError(f"{label}: row {row}: {problem}: ts={values['ts']}, rate={values['rate']}")
    return frame
