"""Bar series into the engine: read a DataFrame, Parquet or CSV file, validate it, optionally repair it.

The engine works on one canonical frame: `ts` (int64 UTC nanoseconds, the bar's open time) and float64
`open, high, low, close, volume`. Any extra columns are kept: the strategy sees them as precomputed
indicator columns.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import polars as pl

from backtester.data.errors import DataError

__all__ = ["OHLCV", "BarData", "DataError", "RepairReport", "load_bars", "validate_bars"]

OHLCV = ("open", "high", "low", "close", "volume")
_NS_PER = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


class RepairReport(msgspec.Struct, frozen=True):
    """What an explicit repair changed. Rows are counted in the input as read."""

    source: str
    rows_in: int
    rows_out: int
    identical_duplicates_dropped: int
    conflicting_duplicates_resolved: int

    @property
    def changed(self) -> bool:
        return self.rows_in != self.rows_out


class BarData(msgspec.Struct, frozen=True):
    source: str
    frame: pl.DataFrame
    repair: RepairReport | None = None


def load_bars(
    source: pl.DataFrame | str | Path, *, repair: bool = False, name: str | None = None
) -> BarData:
    """Read and validate bars. With `repair`, duplicate timestamps are fixed first (identical rows are
    dropped; of conflicting rows the last is kept, as an exchange's final candle follows its partial one)."""
    label = name or (str(source) if not isinstance(source, pl.DataFrame) else "<DataFrame>")
    raw = read_frame(source, label)
    frame = _canonical(raw, label)
    report = None
    if repair:
        frame, report = _repair_duplicates(frame, label)
    validate_bars(frame, label)
    return BarData(source=label, frame=frame, repair=report)


def read_frame(source: pl.DataFrame | str | Path, label: str) -> pl.DataFrame:
    """A frame as given, or read from a Parquet or CSV file."""
    if isinstance(source, pl.DataFrame):
        return source
    path = Path(source)
    if not path.is_file():
        raise DataError(f"{label}: data file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path)
        if suffix in (".csv", ".txt"):
            return pl.read_csv(path, infer_schema_length=10_000)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{label}: cannot read {suffix} file: {exc}") from exc
    raise DataError(f"{label}: unsupported file type {suffix!r} (use .parquet or .csv)")


def _canonical(raw: pl.DataFrame, label: str) -> pl.DataFrame:
    columns = {c.lower(): c for c in raw.columns}
    missing = [c for c in OHLCV if c not in columns]
    if missing:
        raise DataError(f"{label}: missing column(s) {', '.join(missing)}")
    ts = timestamp_ns(raw, columns, label)
    values = [pl.col(columns[c]).cast(pl.Float64, strict=False).alias(c) for c in OHLCV]
    reserved = {"timestamp", "timestamp_ms", "ts", "date", "datetime", *OHLCV}
    extras = [pl.col(c) for c in raw.columns if c.lower() not in reserved]
    return raw.select(ts.alias("ts"), *values, *extras)


def timestamp_ns(raw: pl.DataFrame, columns: dict[str, str], label: str) -> pl.Expr:
    """The frame's timestamp column as int64 UTC nanoseconds (`columns`: lower-case name -> name)."""
    if "timestamp_ms" in columns:
        return pl.col(columns["timestamp_ms"]).cast(pl.Int64) * 1_000_000
    for key in ("timestamp", "ts", "date", "datetime"):
        if key not in columns:
            continue
        col = columns[key]
        dtype = raw.schema[col]
        if isinstance(dtype, pl.Datetime):
            unit = dtype.time_unit
            if dtype.time_zone not in (None, "UTC"):
                return (pl.col(col).dt.convert_time_zone("UTC").dt.replace_time_zone(None)).cast(
                    pl.Int64
                ) * _NS_PER[unit]
            return pl.col(col).cast(pl.Int64) * _NS_PER[unit]
        if dtype.is_integer():
            return pl.col(col).cast(pl.Int64) * _NS_PER[epoch_unit(raw[col])]
        raise DataError(
            f"{label}: column {col!r} must be an integer epoch or a datetime, not {dtype}"
        )
    raise DataError(f"{label}: no timestamp column (expected timestamp_ms or timestamp)")


def epoch_unit(values: pl.Series) -> str:
    """Epoch unit from magnitude: any date after 1973 in ms exceeds 1e11, in us 1e14, in ns 1e17."""
    peak = values.abs().max()
    magnitude = int(peak) if isinstance(peak, int) else 0
    if magnitude >= 10**17:
        return "ns"
    if magnitude >= 10**14:
        return "us"
    if magnitude >= 10**11:
        return "ms"
    return "s"


def _repair_duplicates(frame: pl.DataFrame, label: str) -> tuple[pl.DataFrame, RepairReport]:
    rows_in = frame.height
    deduped = frame.unique(maintain_order=True)
    identical = rows_in - deduped.height
    resolved = deduped.unique(subset="ts", keep="last", maintain_order=True)
    conflicting = deduped.height - resolved.height
    # keep="last" keeps the position of the last occurrence too, which is where the final candle sits.
    report = RepairReport(
        source=label,
        rows_in=rows_in,
        rows_out=resolved.height,
        identical_duplicates_dropped=identical,
        conflicting_duplicates_resolved=conflicting,
    )
    return resolved, report


def validate_bars(frame: pl.DataFrame, label: str) -> None:
    """Raise `DataError` naming the first row (0-based, as read) that breaks a rule."""
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
        ("duplicate timestamp", ts.diff() == 0),
        ("timestamp before the previous row (unsorted)", ts.diff() < 0),
        ("non-positive price", pl.min_horizontal("open", "high", "low", "close") <= 0),
        ("negative volume", pl.col("volume") < 0),
        ("high below max(open, close)", pl.col("high") < pl.max_horizontal("open", "close")),
        ("low above min(open, close)", pl.col("low") > pl.min_horizontal("open", "close")),
    ]
    flags = frame.select(
        *[
            expr.fill_null(False).arg_true().first().alias(str(i))
            for i, (_, expr) in enumerate(checks)
        ]
    ).row(0)
    failures = [(row, checks[i][0]) for i, row in enumerate(flags) if row is not None]
    if not failures:
        return
    row, problem = min(failures)
    values = frame.row(row, named=True)
    shown = ", ".join(f"{k}={values[k]}" for k in ("ts", *OHLCV))
    hint = (
        " (enable repair to drop or resolve duplicates)" if problem == "duplicate timestamp" else ""
    )
    raise DataError(f"{label}: row {row}: {problem}: {shown}{hint}")
