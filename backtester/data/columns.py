"""The columns of a table someone hands us (a file, a DataFrame): which one holds the time, and the
time and the prices read as numbers, with errors that name the row and show the text that was there.

One reader for every way bars come in: `load_bars` (notebooks and run configs) and `data import`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from backtester.data.errors import DataError

# In order of preference. "" is the unnamed first column of a CSV written from a DataFrame index
# (backtesting.py's GOOG.csv: `,Open,High,Low,Close,Volume`), as pandas writes it.
TIME_NAMES = ("timestamp_ms", "timestamp", "ts", "open_time", "date", "datetime", "time", "")
ROWS_AS_READ = "0-based data row as read"
_NS_PER = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def time_column(raw: pl.DataFrame) -> str | None:
    """The name of the column holding the bar times, or None."""
    names = {c.lower(): c for c in raw.columns}
    found = next((names[n] for n in TIME_NAMES if n in names), None)
    if found == "" and raw.columns[0] != "":
        return None  # an unnamed column that is not the first is not an index
    return found


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


def _epoch_unit_of(values: pl.Series, column: str, label: str) -> str:
    """The one unit of a column of integer epochs, told by magnitude. A `timestamp_ms` column must
    hold milliseconds: read as such, seconds would put minute bars 60 ms apart, and nanoseconds
    overflow. A column mixing units is refused at its first row in another unit."""
    # Streaming, like validate_bars: the bands are computed a batch at a time, not as columns as
    # long as the series that polars' allocator would keep hold of (five years of minutes: 27 MB).
    magnitude = pl.col("v").cast(pl.Int64).abs()
    band = pl.sum_horizontal(*[(magnitude >= limit).cast(pl.Int8) for limit in _UNIT_LIMITS])
    present = pl.col("v").is_not_null()
    rows = values.alias("v").to_frame().lazy()
    first, first_band = (
        rows.select(
            present.arg_true().first().alias("row"), band.filter(present).first().alias("band")
        )
        .collect(engine="streaming")
        .row(0)
    )
    if first is None:
        return "ms"
    ms_column = column.lower() == "timestamp_ms"
    expected = 1 if ms_column else int(first_band)
    (odd,) = (
        rows.select((band != expected).fill_null(False).arg_true().first())
        .collect(engine="streaming")
        .row(0)
    )
    if odd is None:
        return _UNITS[expected]
    row = int(odd)
    found = _UNIT_NAMES[_UNITS[sum(abs(int(values[row])) >= limit for limit in _UNIT_LIMITS)]]
    if ms_column:
        why = "not milliseconds (name the column `timestamp` to have the unit detected)"
    else:
        why = f"unlike the epoch {_UNIT_NAMES[_UNITS[expected]]} of row {int(first)}"
    raise DataError(
        f"{label}: row {row} ({ROWS_AS_READ}): {column}={values[row]} is in epoch {found}, {why}"
    )


# Any date after 1973 in ms exceeds 1e11, in us 1e14, in ns 1e17.
_UNIT_LIMITS = (10**11, 10**14, 10**17)
_UNITS = ("s", "ms", "us", "ns")
_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


def timestamps_ns(raw: pl.DataFrame, column: str, label: str) -> pl.Series:
    """The column as int64 UTC nanoseconds: integer epochs (`timestamp_ms` in ms, any other in s, ms,
    us or ns told apart by magnitude), datetimes and dates (naive ones are UTC), or ISO text (UTC
    unless it names an offset)."""
    values = raw[column]
    dtype = values.dtype
    if dtype.is_integer():
        return values.cast(pl.Int64) * _NS_PER[_epoch_unit_of(values, column, label)]
    if dtype == pl.String:
        values = _parse_text(values, column, label)
        dtype = values.dtype
    if dtype == pl.Date:
        values = values.cast(pl.Datetime("ns"))
        dtype = values.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            values = values.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return values.dt.epoch("ns")
    shown = column or "the unnamed first column"
    raise DataError(
        f"{label}: column {shown!r} must hold integer epochs, datetimes or ISO date-times, "
        f"not {dtype}"
    )


def _parse_text(values: pl.Series, column: str, label: str) -> pl.Series:
    try:
        parsed = values.str.to_datetime(time_unit="ns", strict=False)
    except pl.exceptions.ComputeError as exc:
        # The format is inferred from the first value present, so that one is the culprit.
        row = int(values.is_not_null().arg_true()[0])
        raise DataError(
            f"{label}: row {row} ({ROWS_AS_READ}): {column}={values[row]!r} is not a date-time "
            f"({exc})"
        ) from exc
    if parsed.null_count() > values.null_count():
        row = int((parsed.is_null() & values.is_not_null()).arg_true()[0])
        raise DataError(
            f"{label}: row {row} ({ROWS_AS_READ}): {column}={values[row]!r} is not a date-time"
        )
    return parsed


def numbers(raw: pl.DataFrame, column: str, label: str, *, name: str | None = None) -> pl.Series:
    """The column as float64, named `name`. Text that is not a number is an error naming the row and
    showing the text (not a silent null that later reads as a missing value); empty fields stay null."""
    values = raw[column]
    try:
        cast = values.cast(pl.Float64, strict=False)
    except pl.exceptions.InvalidOperationError as exc:
        raise DataError(f"{label}: column {column!r} cannot be read as numbers: {exc}") from exc
    if values.dtype == pl.String and cast.null_count() > values.null_count():
        row = int((cast.is_null() & values.is_not_null()).arg_true()[0])
        raise DataError(
            f"{label}: row {row} ({ROWS_AS_READ}): {column}={values[row]!r} is not a number"
        )
    return cast.alias(name or column)


def iso_ns(ns: int | None) -> str:
    """A bar time as ISO 8601 UTC, to the nanosecond when it has one."""
    if ns is None:
        return "null"
    seconds, rest = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}Z" if rest == 0 else f"{stamp}.{rest:09d}Z"
