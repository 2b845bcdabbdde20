"""Write side of the catalog: validate, merge into yearly partitions, commit through the manifest.

One call to `write_series` is one transaction: the incoming rows are validated first (nothing is
touched if they are bad), each affected year is merged with what is stored (same de-duplication
rule: the later row wins), written as a new content-addressed file, and only then is the manifest
replaced. A crash at any point leaves the previous manifest and every file it names intact.

Parquet settings, chosen for read speed (see adr/0010): zstd at a fast negative level, which keeps
literals raw and so decompresses near memory speed; delta encoding for the regular timestamps; no
dictionaries (prices rarely repeat); row groups of 64k rows so a year decodes on all cores.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import msgspec
import polars as pl
import pyarrow.parquet as pq

from backtester.data.atomic import (
    TEMP_SUFFIX,
    atomic_write_bytes,
    exclusive_lock,
    sha256_bytes,
    sha256_file,
)
from backtester.data.errors import CatalogError
from backtester.data.layout import LOCK_NAME, SeriesKey, partition_name, series_dir, year_bounds
from backtester.data.series_manifest import (
    FileEntry,
    Range,
    SeriesManifest,
    SourceEntry,
    add_source,
    load_manifest,
    merge_ranges,
    write_manifest,
)
from backtester.data.validation import (
    DEFAULT_SPIKE_THRESHOLD,
    Spike,
    ValidationReport,
    clean,
    find_gaps_within,
    find_spikes,
    gap_tolerance,
)

ZSTD_LEVEL = -7
ROW_GROUP_ROWS = 65_536


def write_series(
    root: Path,
    key: SeriesKey,
    frame: pl.DataFrame,
    *,
    interval_ms: int,
    source: SourceEntry,
    covered: Sequence[Range] | None = None,
    spike_threshold: float = DEFAULT_SPIKE_THRESHOLD,
    drop_invalid: bool = False,
    label: str | None = None,
) -> tuple[SeriesManifest, ValidationReport]:
    """Validate `frame` and merge it into the series; return the committed manifest and the report.

    `covered` are the ranges the source is known to have delivered completely (a fetch knows them);
    by default the span of the rows written is taken as covered (an import).
    """
    name = label or key.label()
    _check_interval(load_manifest(root, key), key, interval_ms)
    rows, report = clean(
        frame,
        kind=key.kind,
        timeframe_ms=interval_ms,
        source=name,
        spike_threshold=spike_threshold,
        drop_invalid=drop_invalid,
    )
    if covered is None:
        step = interval_ms if key.kind == "ohlcv" else 1
        stamps = rows["timestamp_ms"]
        covered = [(stamps[0], stamps[-1] + step)] if rows.height else []
    directory = series_dir(root, key)
    with exclusive_lock(directory / LOCK_NAME, key.label()):
        old = load_manifest(root, key)
        _check_interval(old, key, interval_ms)
        files = {_year(f): f for f in (old.files if old else ())}
        replaced = 0
        for year, part in _by_year(rows):
            merged, clashes = _merge(directory, files.get(year), part)
            files[year] = _write_partition(directory, year, merged)
            replaced += clashes
        report = msgspec.structs.replace(report, replaced_stored=replaced)
        entries = tuple(files[y] for y in sorted(files))
        manifest = _summarise(
            directory,
            key,
            entries,
            interval_ms=interval_ms,
            coverage=merge_ranges([*(old.coverage if old else ()), *covered]),
            sources=add_source(old.sources if old else (), source),
            report=report,
            spike_threshold=spike_threshold,
        )
        write_manifest(root, manifest)
        remove_unreferenced(directory, manifest)
    return manifest, report


def _check_interval(stored: SeriesManifest | None, key: SeriesKey, interval_ms: int) -> None:
    if stored is not None and stored.interval_ms != interval_ms:
        raise CatalogError(
            f"{key.label()}: stored with interval {stored.interval_ms} ms, not {interval_ms} ms"
        )


def _year(entry: FileEntry) -> int:
    return int(entry.path.split("/", 1)[0].removeprefix("year="))


def _by_year(rows: pl.DataFrame) -> list[tuple[int, pl.DataFrame]]:
    if rows.height == 0:
        return []
    years = rows.select(
        pl.from_epoch("timestamp_ms", time_unit="ms").dt.year().alias("year")
    ).to_series()
    tagged = rows.with_columns(year=years)
    return [
        (int(year), part.drop("year"))
        for (year,), part in sorted(tagged.partition_by("year", as_dict=True).items())
    ]


def _merge(
    directory: Path, entry: FileEntry | None, part: pl.DataFrame
) -> tuple[pl.DataFrame, int]:
    """The stored year with `part` merged in (the newer row wins a clash), and how many stored
    rows got different values. Both sides are clean and sorted, so no full re-validation."""
    if entry is None:
        return part, 0
    stored = read_partition(directory, entry)
    clashes = stored.join(part, on="timestamp_ms", how="inner", suffix="_new")
    values = [c for c in part.columns if c != "timestamp_ms"]
    changed = clashes.filter(pl.any_horizontal(pl.col(c) != pl.col(f"{c}_new") for c in values))
    kept = stored.join(part, on="timestamp_ms", how="anti")
    return kept.merge_sorted(part, key="timestamp_ms"), changed.height


def read_partition(directory: Path, entry: FileEntry) -> pl.DataFrame:
    """A stored file, checked against its manifest hash before its rows are trusted again."""
    path = directory / entry.path
    if not path.is_file():
        raise CatalogError(f"{path}: named by the manifest but missing")
    if sha256_file(path) != entry.sha256:
        raise CatalogError(f"{path}: content hash does not match the manifest (file changed)")
    return pl.read_parquet(path)


def _write_partition(directory: Path, year: int, rows: pl.DataFrame) -> FileEntry:
    start, end = year_bounds(year)
    first, last = rows["timestamp_ms"][0], rows["timestamp_ms"][-1]
    if not start <= first <= last < end:
        raise CatalogError(f"rows {first}..{last} do not belong to year {year}")
    data = parquet_bytes(rows)
    digest = sha256_bytes(data)
    relative = partition_name(year, digest)
    target = directory / relative
    if not (target.is_file() and sha256_file(target) == digest):
        atomic_write_bytes(target, data)
    return FileEntry(path=relative, sha256=digest, rows=rows.height, first_ms=first, last_ms=last)


def parquet_bytes(rows: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(
        rows.to_arrow(),
        buffer,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        use_dictionary=False,
        column_encoding={"timestamp_ms": "DELTA_BINARY_PACKED"},
        row_group_size=ROW_GROUP_ROWS,
        write_statistics=True,
    )
    return buffer.getvalue()


def _summarise(
    directory: Path,
    key: SeriesKey,
    files: tuple[FileEntry, ...],
    *,
    interval_ms: int,
    coverage: tuple[Range, ...],
    sources: tuple[SourceEntry, ...],
    report: ValidationReport,
    spike_threshold: float,
) -> SeriesManifest:
    if files:
        columns = ["timestamp_ms"]
        if key.kind == "ohlcv":
            columns += ["high", "low", "close"]
        series = (
            pl.scan_parquet([directory / f.path for f in files], hive_partitioning=False)
            .select(columns)
            .collect()
        )
    else:
        series = pl.DataFrame({"timestamp_ms": []}, schema={"timestamp_ms": pl.Int64})
    spikes: tuple[Spike, ...] = ()
    gaps = find_gaps_within(
        series["timestamp_ms"],
        interval_ms,
        coverage,
        tolerance=gap_tolerance(key.kind, interval_ms),
    )
    if key.kind == "ohlcv" and series.height:
        spikes = find_spikes(series, spike_threshold)
    return SeriesManifest(
        exchange=key.exchange,
        market=key.market,
        symbol=key.symbol,
        timeframe=key.timeframe,
        kind=key.kind,
        interval_ms=interval_ms,
        rows=sum(f.rows for f in files),
        first_ms=files[0].first_ms if files else None,
        last_ms=files[-1].last_ms if files else None,
        files=files,
        coverage=coverage,
        gaps=gaps,
        spikes=spikes,
        sources=sources,
        last_write=report,
        price=key.price,
    )


def remove_unreferenced(directory: Path, manifest: SeriesManifest) -> list[Path]:
    """Delete partition and temp files the manifest does not name (leftovers of a crash)."""
    keep = {directory / f.path for f in manifest.files}
    removed = []
    for path in sorted(directory.glob("year=*/*")):
        if (
            path.is_file()
            and path not in keep
            and (path.suffix == ".parquet" or path.name.endswith(TEMP_SUFFIX))
        ):
            path.unlink()
            removed.append(path)
    for path in directory.glob(f".*{TEMP_SUFFIX}"):
        path.unlink()
        removed.append(path)
    for year_dir in directory.glob("year=*"):
        if year_dir.is_dir() and not any(year_dir.iterdir()):
            year_dir.rmdir()
    return removed
