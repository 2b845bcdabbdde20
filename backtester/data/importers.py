"""Read candle and funding files people already have into the catalog's columns.

Formats (`auto` picks one from the suffix and, for CSV, the first line):
- `csv`: a header row; a time column (`timestamp_ms`, `timestamp`, `ts`, `open_time`, `date`,
  `datetime`, `time`, or an unnamed first column, as a DataFrame index is written: backtesting.py's
  `GOOG.csv`) holding integer epochs (s, ms, us or ns, told apart by magnitude) or ISO date-times
  (UTC unless they name an offset), and `open, high, low, close, volume` in any letter case. Funding
  files need a `funding_rate` column.
- `binance-klines`: Binance's 12-column kline CSV (data.binance.vision), with or without header.
- `freqtrade-json`: freqtrade's `[[ts_ms, open, high, low, close, volume], ...]`.
- `feather`: freqtrade's feather files (`date` as a timestamp, then the OHLCV columns), read
  through pyarrow.
freqtrade stores funding rates in the `open` column of its candle files; as funding they are read
from there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import polars as pl
from pyarrow import feather

from backtester.data.columns import TIME_NAMES, numbers, time_column, timestamps_ns
from backtester.data.errors import DataError
from backtester.data.validation import OHLCV_COLUMNS, Kind

Format = Literal["csv", "binance-klines", "freqtrade-json", "feather"]
FORMATS: tuple[Format, ...] = ("csv", "binance-klines", "freqtrade-json", "feather")
BINANCE_KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip


def read_file(path: Path, kind: Kind, fmt: Format | Literal["auto"] = "auto") -> pl.DataFrame:
    """The file's rows as `timestamp_ms` + float columns of `kind`, in file order, unvalidated."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    chosen = detect_format(path) if fmt == "auto" else fmt
    try:
        if chosen == "csv":
            frame = _from_table(pl.read_csv(path, infer_schema_length=10_000), path, kind)
        elif chosen == "binance-klines":
            frame = _binance_klines(path, kind)
        elif chosen == "freqtrade-json":
            frame = _freqtrade_json(path, kind)
        else:
            frame = _from_table(_feather(path), path, kind)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot read as {chosen}: {exc}") from exc
    return frame


def detect_format(path: Path) -> Format:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "freqtrade-json"
    if suffix in (".feather", ".arrow", ".ipc"):
        return "feather"
    if suffix not in (".csv", ".txt"):
        raise DataError(f"{path}: cannot tell the format from {suffix!r}; pass --format")
    with path.open(encoding="utf-8", errors="replace") as handle:
        first = handle.readline().strip().split(",")
    if len(first) == len(BINANCE_KLINE_COLUMNS) and (
        _is_number(first[0]) or first[0].lower() == "open_time"
    ):
        return "binance-klines"
    if _is_number(first[0]):
        raise DataError(f"{path}: CSV without a header row (and not Binance's 12-column layout)")
    return "csv"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _binance_klines(path: Path, kind: Kind) -> pl.DataFrame:
    with path.open(encoding="utf-8") as handle:
        has_header = not _is_number(handle.readline().split(",")[0])
    raw = pl.read_csv(
        path,
        has_header=False,
        skip_rows=1 if has_header else 0,
        new_columns=list(BINANCE_KLINE_COLUMNS),
        schema_overrides={"open_time": pl.Int64},
    )
    return _from_table(raw, path, kind)


def _feather(path: Path) -> pl.DataFrame:
    table = pl.from_arrow(feather.read_table(path))
    if not isinstance(table, pl.DataFrame):
        raise DataError(f"{path}: feather file holds a single column, not a table")
    return table


def _freqtrade_json(path: Path, kind: Kind) -> pl.DataFrame:
    # The json module, not msgspec: freqtrade writes NaN as a bare token, which only it accepts.
    rows = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(rows, list) or any(not isinstance(r, list) or len(r) < 6 for r in rows):
        raise DataError(f"{path}: expected a JSON array of [ts_ms, open, high, low, close, volume]")
    schema = {c: pl.Int64 if c == "timestamp_ms" else pl.Float64 for c in OHLCV_COLUMNS}
    frame = pl.DataFrame([r[:6] for r in rows], schema=schema, orient="row", strict=False)
    return _from_table(frame, path, kind)


def _from_table(raw: pl.DataFrame, path: Path, kind: Kind) -> pl.DataFrame:
    names = {c.lower(): c for c in raw.columns}
    time_col = time_column(raw)
    if time_col is None:
        raise DataError(f"{path}: no time column (one of {', '.join(filter(None, TIME_NAMES))})")
    label = str(path)
    # The catalog keeps milliseconds: finer epochs are floored to the millisecond they fall in.
    ts = (timestamps_ns(raw, time_col, label) // 1_000_000).alias("timestamp_ms")
    if kind == "funding":
        source = names.get("funding_rate") or names.get("fundingrate") or names.get("open")
        if source is None:
            raise DataError(f"{path}: no funding_rate column")
        values = [numbers(raw, source, label, name="funding_rate")]
    else:
        missing = [c for c in OHLCV_COLUMNS[1:] if c not in names]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
        values = [numbers(raw, names[c], label, name=c) for c in OHLCV_COLUMNS[1:]]
    return pl.DataFrame([ts, *values])
