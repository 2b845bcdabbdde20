"""Read side of the catalog: select a series by (exchange, symbol, timeframe, start, end).

    from backtester.data.catalog import read_series
    read = read_series("data", "binance", "BTC/USDT", "1h", start="2024-01-01", end="2024-03-01")
    bars = load_bars(read.frame)          # timestamp_ms int64 + open/high/low/close/volume float64
    read.partitions                       # ((path from root, sha256 of the file, rows), ...)
    rates = read_series("data", "binance", "BTC/USDT:USDT", "funding", market="swap").frame
    # funding: timestamp_ms int64 + funding_rate float64
    marks = read_series("data", "binance", "BTC/USDT:USDT", "1h", market="swap", price="mark")

`read_series(root, exchange, symbol, timeframe, *, market="spot", price="trade", start=None,
end=None, columns=None)` reads rows with start <= timestamp_ms < end (epoch ms, or an ISO date/time in UTC).
Only the partition files whose [first, last] overlaps the window are opened, through one lazy polars
scan that reads only the requested columns and skips row groups outside the window by their
statistics. The file list comes from the series manifest, never from listing directories, so a
half-written file is never read. `partitions` carries the content hashes the manifest recorded when
each file was written (files are content-addressed and never rewritten in place); pass `verify=True`
to hash the files again while reading, or run `data validate`.

When no series is stored at `timeframe`, the coarsest stored series whose timeframe divides it is
read and resampled (see `resample.py`); `SeriesRead.source_timeframe` says which one was used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from backtester.data.atomic import sha256_file
from backtester.data.errors import CatalogError
from backtester.data.layout import FUNDING, MANIFEST_NAME, Price, SeriesKey, series_dir, symbol_dir
from backtester.data.resample import resample
from backtester.data.series_manifest import FileEntry, SeriesManifest, read_manifest
from backtester.data.timeframes import ceil_to, floor_to, parse_utc_ms, timeframe_ms
from backtester.data.validation import FUNDING_COLUMNS, OHLCV_COLUMNS


@dataclass(frozen=True)
class PartitionRead:
    path: str
    sha256: str
    rows: int


@dataclass(frozen=True)
class SeriesRead:
    key: SeriesKey
    source_timeframe: str
    frame: pl.DataFrame
    partitions: tuple[PartitionRead, ...]
    manifest: SeriesManifest


def read_series(
    root: str | Path,
    exchange: str,
    symbol: str,
    timeframe: str,
    *,
    market: str = "spot",
    price: Price = "trade",
    start: int | str | None = None,
    end: int | str | None = None,
    columns: Sequence[str] | None = None,
    verify: bool = False,
) -> SeriesRead:
    root = Path(root)
    key = SeriesKey(exchange, market, symbol, timeframe, price)
    lo = parse_utc_ms(start) if isinstance(start, str) else start
    hi = parse_utc_ms(end) if isinstance(end, str) else end
    wanted = _columns(key, columns)
    try:
        return _read(root, key, start=lo, end=hi, columns=wanted, verify=verify)
    except FileNotFoundError:
        # A writer committed between our manifest read and the scan and removed a file it
        # replaced; the new manifest names its successor.
        return _read(root, key, start=lo, end=hi, columns=wanted, verify=verify)


def _read(
    root: Path,
    key: SeriesKey,
    *,
    start: int | None,
    end: int | None,
    columns: list[str] | None,
    verify: bool,
) -> SeriesRead:
    manifest = _find_manifest(root, key)
    if manifest is not None:
        lazy, parts = scan(root, manifest, start=start, end=end, columns=columns, verify=verify)
        return SeriesRead(key, key.timeframe, _collect(lazy, root, key), parts, manifest)
    source = _resample_source(root, key)
    target_ms = timeframe_ms(key.timeframe)
    # Whole target bars inside [start, end) only: round the window inwards to bucket edges.
    lazy, parts = scan(
        root,
        source,
        start=None if start is None else ceil_to(start, target_ms),
        end=None if end is None else floor_to(end, target_ms),
        columns=columns,
        verify=verify,
    )
    frame = resample(_collect(lazy, root, source.key), source.interval_ms, target_ms)
    return SeriesRead(key, source.timeframe, frame, parts, source)


def _collect(lazy: pl.LazyFrame, root: Path, key: SeriesKey) -> pl.DataFrame:
    try:
        return lazy.collect()
    except pl.exceptions.PolarsError as exc:
        # A partition damaged after it was written: name the series, not a Parquet internal.
        raise CatalogError(
            f"{series_dir(root, key)}: a partition cannot be read ({exc}); "
            "check it with `python -m backtester data validate`"
        ) from exc


def scan(
    root: Path,
    manifest: SeriesManifest,
    *,
    start: int | None = None,
    end: int | None = None,
    columns: Sequence[str] | None = None,
    verify: bool = False,
) -> tuple[pl.LazyFrame, tuple[PartitionRead, ...]]:
    """A lazy frame over the files of one series that overlap [start, end), and those files."""
    directory = series_dir(root, manifest.key)
    chosen = [f for f in manifest.files if _overlaps(f, start, end)]
    parts = tuple(_partition(root, directory, f, verify) for f in chosen)
    schema = OHLCV_COLUMNS if manifest.kind == "ohlcv" else FUNDING_COLUMNS
    selected = list(columns) if columns is not None else list(schema)
    if not chosen:
        dtypes = {c: pl.Int64 if c == "timestamp_ms" else pl.Float64 for c in schema}
        return pl.DataFrame(schema=dtypes).lazy().select(selected), parts
    lazy = pl.scan_parquet([directory / f.path for f in chosen], hive_partitioning=False)
    ts = pl.col("timestamp_ms")
    if start is not None and start > chosen[0].first_ms:
        lazy = lazy.filter(ts >= start)
    if end is not None and end <= chosen[-1].last_ms:
        lazy = lazy.filter(ts < end)
    return lazy.select(selected), parts


def _overlaps(entry: FileEntry, start: int | None, end: int | None) -> bool:
    return (start is None or entry.last_ms >= start) and (end is None or entry.first_ms < end)


def _partition(root: Path, directory: Path, entry: FileEntry, verify: bool) -> PartitionRead:
    path = directory / entry.path
    if verify:
        if not path.is_file():
            raise CatalogError(f"{path}: named by the manifest but missing")
        if sha256_file(path) != entry.sha256:
            raise CatalogError(f"{path}: content hash does not match the manifest")
    return PartitionRead(path.relative_to(root).as_posix(), entry.sha256, entry.rows)


def _columns(key: SeriesKey, columns: Sequence[str] | None) -> list[str] | None:
    if columns is None:
        return None
    allowed = FUNDING_COLUMNS if key.kind == "funding" else OHLCV_COLUMNS
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise CatalogError(f"{key.label()}: unknown column(s) {', '.join(unknown)}")
    return ["timestamp_ms", *[c for c in columns if c != "timestamp_ms"]]


def _find_manifest(root: Path, key: SeriesKey) -> SeriesManifest | None:
    path = series_dir(root, key) / MANIFEST_NAME
    return read_manifest(path) if path.is_file() else None


def _resample_source(root: Path, key: SeriesKey) -> SeriesManifest:
    """The coarsest stored timeframe that divides the wanted one (fewest rows to aggregate)."""
    target_ms = timeframe_ms(key.timeframe) if key.timeframe != FUNDING else 0
    stored = [m for m in list_series(root) if _same_instrument(m, key) and m.kind == "ohlcv"]
    usable = [m for m in stored if target_ms and target_ms % m.interval_ms == 0]
    if not usable:
        have = ", ".join(sorted(m.timeframe for m in stored)) or "none"
        raise CatalogError(
            f"{key.label()}: not in the catalog at {root} and no finer timeframe to resample "
            f"from (stored timeframes: {have}); fetch or import it first"
        )
    return max(usable, key=lambda m: m.interval_ms)


def _same_instrument(manifest: SeriesManifest, key: SeriesKey) -> bool:
    return (
        manifest.exchange == key.exchange
        and manifest.market == key.market
        and manifest.price == key.price
        and symbol_dir(manifest.symbol) == symbol_dir(key.symbol)
    )


def list_series(root: str | Path) -> list[SeriesManifest]:
    """Every series under `root`, sorted by exchange, market, symbol, timeframe."""
    root = Path(root)
    manifests = [read_manifest(p) for p in sorted(root.glob(f"*/*/*/*/{MANIFEST_NAME}"))]
    return sorted(manifests, key=lambda m: (m.exchange, m.market, m.symbol, m.timeframe))
