"""Bar series into the engine: read a DataFrame (polars or pandas), Parquet or CSV file, validate it,
optionally repair it.

The engine works on one canonical frame: `ts` (int64 UTC nanoseconds, the bar's open time) and float64
`open, high, low, close, volume`. Any extra columns are kept: the strategy sees them as precomputed
indicator columns.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import polars as pl

from backtester.data.columns import (
    ROWS_AS_READ,
    TIME_NAMES,
    epoch_unit,
    iso_ns,
    numbers,
    time_column,
    timestamps_ns,
)
from backtester.data.duplicates import resolve_duplicates
from backtester.data.errors import DataError
from backtester.data.timeframes import format_timeframe

__all__ = [
    "OHLCV",
    "BarData",
    "DataError",
    "RepairReport",
    "epoch_unit",
    "is_pandas_frame",
    "load_bars",
    "validate_bars",
]

OHLCV = ("open", "high", "low", "close", "volume")
# The row number as read, carried through repair so that errors name the row of the input.
_ROW = "__row_as_read"
REPAIR_HINT = (
    "pass repair=True to Backtest or load_bars, or set repair = true under [[data]] in a run "
    "config: identical duplicates are dropped, the last of conflicting ones kept, rows sorted"
)


class RepairReport(msgspec.Struct, frozen=True):
    """What an explicit repair changed. Rows are counted in the input as read."""

    source: str
    rows_in: int
    rows_out: int
    identical_duplicates_dropped: int
    conflicting_duplicates_resolved: int
    out_of_order_sorted: int = 0

    @property
    def changed(self) -> bool:
        return self.rows_in != self.rows_out or self.out_of_order_sorted > 0


class BarData(msgspec.Struct, frozen=True):
    source: str
    frame: pl.DataFrame
    repair: RepairReport | None = None


def load_bars(source: Any, *, repair: bool = False, name: str | None = None) -> BarData:
    """Read and validate bars from a polars DataFrame, a pandas DataFrame (a DatetimeIndex and
    Open/High/Low/Close/Volume columns, as backtesting.py takes them) or a .parquet/.csv path. With
    `repair`, duplicate timestamps are fixed first (identical rows are dropped; of conflicting rows
    the last is kept, as an exchange's final candle follows its partial one) and rows are sorted."""
    label = name or (str(source) if isinstance(source, str | Path) else "<DataFrame>")
    frame = _canonical(read_frame(source, label), label).with_row_index(_ROW)
    report = None
    if repair:
        frame, report = _repair_duplicates(frame, label)
    # One chunk per column (a Parquet file reads as several): every run reads the columns as numpy
    # arrays, which is free for one chunk and a copy of the column for several. Before validating,
    # so that its temporaries reuse the memory the chunks are released from.
    frame = frame.rechunk()
    validate_bars(frame, label)
    return BarData(source=label, frame=frame.drop(_ROW), repair=report)


def is_pandas_frame(source: object) -> bool:
    """A pandas DataFrame, told without importing pandas (an optional dependency)."""
    return any(
        cls.__name__ == "DataFrame" and cls.__module__.split(".", 1)[0] == "pandas"
        for cls in type(source).__mro__
    )


def read_frame(source: Any, label: str) -> pl.DataFrame:
    """A frame as given (polars or pandas), or read from a Parquet or CSV file."""
    if isinstance(source, pl.DataFrame):
        return source
    if is_pandas_frame(source):
        return _from_pandas(source)
    if not isinstance(source, str | Path):
        raise DataError(
            f"{label}: bars must be a polars or pandas DataFrame or a .parquet/.csv path, "
            f"not {type(source).__name__}"
        )
    path = Path(source)
    if not path.is_file():
        raise DataError(f"{label}: data file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return _read_parquet(path)
        if suffix in (".csv", ".txt"):
            return pl.read_csv(path, infer_schema_length=10_000)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{label}: cannot read {suffix} file: {exc}") from exc
    raise DataError(f"{label}: unsupported file type {suffix!r} (use .parquet or .csv)")


def _read_parquet(path: Path) -> pl.DataFrame:
    """Column by column, each joined into one chunk as it is read. Read whole, the file's row
    groups become chunks, and joining them holds every column twice while polars' allocator keeps
    freed memory for a while: five years of minutes peaked at 310-350 MB that way, 210 MB so."""
    return pl.DataFrame(
        [
            pl.read_parquet(path, columns=[name]).to_series().rechunk()
            for name in pl.read_parquet_schema(path)
        ]
    )


def _from_pandas(frame: Any) -> pl.DataFrame:
    """The frame's columns, and its DatetimeIndex as the time column when no column holds the time.
    polars imports pandas here, which the caller has, since it made the frame."""
    table = pl.from_pandas(frame)
    if getattr(frame.index.dtype, "kind", "") == "M" and time_column(table) is None:
        table = table.insert_column(0, pl.Series("timestamp", frame.index))
    return table


def _canonical(raw: pl.DataFrame, label: str) -> pl.DataFrame:
    columns = {c.lower(): c for c in raw.columns}
    missing = [c for c in OHLCV if c not in columns]
    if missing:
        raise DataError(f"{label}: missing column(s) {', '.join(missing)}")
    time = time_column(raw)
    if time is None:
        raise DataError(f"{label}: no timestamp column (expected timestamp_ms or timestamp)")
    ts = timestamps_ns(raw, time, label).alias("ts")
    values = [numbers(raw, columns[c], label, name=c) for c in OHLCV]
    reserved = {*TIME_NAMES, *OHLCV, _ROW}
    extras = [raw[c] for c in raw.columns if c.lower() not in reserved]
    return pl.DataFrame([ts, *values, *extras])


def _repair_duplicates(frame: pl.DataFrame, label: str) -> tuple[pl.DataFrame, RepairReport]:
    values = [c for c in frame.columns if c not in ("ts", _ROW)]
    repaired, resolved = resolve_duplicates(frame, "ts", values)
    report = RepairReport(
        source=label,
        rows_in=frame.height,
        rows_out=repaired.height,
        identical_duplicates_dropped=resolved.identical,
        conflicting_duplicates_resolved=resolved.conflicting,
        out_of_order_sorted=resolved.out_of_order,
    )
    return repaired, report


def validate_bars(frame: pl.DataFrame, label: str) -> None:
    """Raise `DataError` naming the first row (0-based data row as read) that breaks a rule."""
    if frame.height == 0:
        raise DataError(f"{label}: no bars")
    ts = pl.col("ts")
    checks: list[tuple[str, pl.Expr]] = [
        (
            "null or NaN value",
            pl.any_horizontal(
                ts.is_null(), *[pl.col(c).is_null() | pl.col(c).is_nan() for c in OHLCV]
            ),
        ),
        ("infinite value", pl.any_horizontal(*[pl.col(c).is_infinite() for c in OHLCV])),
        ("duplicate timestamp", ts.diff() == 0),
        ("timestamp before the previous row (unsorted)", ts.diff() < 0),
        ("non-positive price", pl.min_horizontal("open", "high", "low", "close") <= 0),
        ("negative volume", pl.col("volume") < 0),
        ("high below max(open, close)", pl.col("high") < pl.max_horizontal("open", "close")),
        ("low above min(open, close)", pl.col("low") > pl.min_horizontal("open", "close")),
    ]
    step = bar_step_ns(frame["ts"])
    if step is not None:
        # Whole hours only beyond an hour: bars in a local time zone move by an hour in UTC when
        # daylight saving time starts or ends, and stay on their grid otherwise.
        grid = math.gcd(step, _HOUR_NS)
        spacing = f"bars are {_duration(step)} apart"
        where = (
            "from the first"
            if grid == step
            else "on whole hours from the first"
            if grid == _HOUR_NS
            else f"on a {_duration(grid)} grid from the first"
        )
        checks.append(
            (f"timestamp off the bar grid ({spacing}, {where})", (ts - ts.first()) % grid != 0)
        )
    # Streaming: the checks go over the rows in batches, so their temporaries are a batch long,
    # not a column long (five years of minutes: +40 MB of peak memory instead of +100 MB).
    flags = (
        frame.lazy()
        .select(
            *[
                expr.fill_null(False).arg_true().first().alias(str(i))
                for i, (_, expr) in enumerate(checks)
            ]
        )
        .collect(engine="streaming")
        .row(0)
    )
    failures = [(index, checks[i][0]) for i, index in enumerate(flags) if index is not None]
    if not failures:
        return
    # After a repair's sort the frame's order is not the input's: rows are named as read, and of
    # several broken rules the row first in the input is named.
    numbers_as_read = frame[_ROW] if _ROW in frame.columns else None

    def as_read(index: int) -> int:
        return index if numbers_as_read is None else int(numbers_as_read[index])

    index, problem = min(failures, key=lambda failure: (as_read(failure[0]), failure[1]))
    values = frame.row(index, named=True)
    shown = ", ".join([f"time={iso_ns(values['ts'])}", *(f"{k}={values[k]}" for k in OHLCV)])
    hint = f" ({REPAIR_HINT})" if problem in _REPAIRABLE else ""
    raise DataError(f"{label}: row {as_read(index)} ({ROWS_AS_READ}): {problem}: {shown}{hint}")


_REPAIRABLE = ("duplicate timestamp", "timestamp before the previous row (unsorted)")
_HOUR_NS = 3_600 * 1_000_000_000
# Beyond a week bars are calendar-based (months, quarters): their spacing varies, there is no grid.
_GRID_UP_TO_NS = 7 * 86_400 * 1_000_000_000


def bar_step_ns(ts: pl.Series) -> int | None:
    """The spacing most bars share, when it is a fixed grid (a week or less); else None."""
    majority = _majority_step(ts)
    if majority is not None:
        return majority if majority <= _GRID_UP_TO_NS else None
    diffs = ts.diff().drop_nulls()
    diffs = diffs.filter(diffs > 0)
    if diffs.len() < 2:
        return None
    step = diffs.mode().min()
    if not isinstance(step, int) or step > _GRID_UP_TO_NS:
        return None
    return step


def _majority_step(ts: pl.Series) -> int | None:
    """The first step, when more than half of all steps take it and it is positive: then it is
    the only mode of the positive steps. In numpy, whose temporaries go back to the system when
    freed, where polars' allocator keeps them for a while (five years of minutes: 34 MB)."""
    if ts.len() < 4 or ts.null_count() or ts.dtype != pl.Int64:
        return None
    steps = np.diff(ts.to_numpy())
    first = int(steps[0])
    if first <= 0 or 2 * int(np.count_nonzero(steps == first)) <= len(steps):
        return None
    return first


def _duration(ns: int) -> str:
    return format_timeframe(ns // 1_000_000) if ns % 1_000_000 == 0 else f"{ns} ns"
