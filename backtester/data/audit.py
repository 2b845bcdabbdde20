"""Re-check a stored series against its manifest and against every validation rule.

Errors: a file missing or changed (content hash), a wrong schema, rows or time bounds that differ
from the manifest, rows outside their year partition, duplicate, unsorted or invalid rows, and gaps
that differ from the recorded ones. Files the manifest does not name are leftovers of an interrupted
write: reported, not errors (the next write removes them).
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import polars as pl

from backtester.data.atomic import TEMP_SUFFIX, sha256_file
from backtester.data.layout import series_dir, year_bounds
from backtester.data.series_manifest import FileEntry, SeriesManifest
from backtester.data.validation import (
    DEFAULT_SPIKE_THRESHOLD,
    FUNDING_COLUMNS,
    OHLCV_COLUMNS,
    ValidationReport,
    clean,
    find_gaps_within,
    gap_tolerance,
)


class SeriesAudit(msgspec.Struct, frozen=True):
    label: str
    errors: tuple[str, ...]
    leftovers: tuple[str, ...]
    report: ValidationReport | None

    @property
    def ok(self) -> bool:
        return not self.errors


def audit_series(
    root: Path, manifest: SeriesManifest, *, spike_threshold: float = DEFAULT_SPIKE_THRESHOLD
) -> SeriesAudit:
    key = manifest.key
    directory = series_dir(root, key)
    columns = OHLCV_COLUMNS if manifest.kind == "ohlcv" else FUNDING_COLUMNS
    errors: list[str] = []
    frames = []
    for entry in manifest.files:
        frame = _check_file(directory, entry, columns, errors)
        if frame is not None:
            frames.append(frame)
    report = None
    if not errors:
        # Drop mode collects every rule break instead of stopping at the first.
        schema = {c: pl.Int64 if c == "timestamp_ms" else pl.Float64 for c in columns}
        combined = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
        rows, report = clean(
            combined,
            kind=key.kind,
            timeframe_ms=manifest.interval_ms,
            source=key.label(),
            spike_threshold=spike_threshold,
            drop_invalid=True,
        )
        # Gaps count within the coverage too: a covered range claims every bar it lacks is missing
        # at the source, and the manifest must say so.
        gaps = find_gaps_within(
            rows["timestamp_ms"],
            manifest.interval_ms,
            manifest.coverage,
            tolerance=gap_tolerance(key.kind, manifest.interval_ms),
        )
        report = msgspec.structs.replace(report, gaps=gaps)
        errors += _report_errors(report, manifest)
    if sum(f.rows for f in manifest.files) != manifest.rows:
        errors.append(f"manifest rows {manifest.rows} differ from the sum over its files")
    return SeriesAudit(key.label(), tuple(errors), _leftovers(root, directory, manifest), report)


def _check_file(
    directory: Path, entry: FileEntry, columns: tuple[str, ...], errors: list[str]
) -> pl.DataFrame | None:
    path = directory / entry.path
    if not path.is_file():
        errors.append(f"{path}: named by the manifest but missing")
        return None
    if sha256_file(path) != entry.sha256:
        errors.append(f"{path}: content hash differs from the manifest (file changed)")
        return None
    frame = pl.read_parquet(path)
    expected = {c: pl.Int64 if c == "timestamp_ms" else pl.Float64 for c in columns}
    if dict(frame.schema) != expected:
        errors.append(f"{path}: schema {dict(frame.schema)} is not {expected}")
        return None
    stamps = frame["timestamp_ms"]
    if frame.height != entry.rows or (
        frame.height and (stamps.min() != entry.first_ms or stamps.max() != entry.last_ms)
    ):
        errors.append(f"{path}: rows or time bounds differ from the manifest")
    year = int(entry.path.split("/", 1)[0].removeprefix("year="))
    start, end = year_bounds(year)
    outside = frame.filter((pl.col("timestamp_ms") < start) | (pl.col("timestamp_ms") >= end))
    if outside.height:
        errors.append(f"{path}: {outside.height} rows outside year {year}")
    return frame


def _report_errors(report: ValidationReport, manifest: SeriesManifest) -> list[str]:
    errors = []
    if report.identical_duplicates or report.conflicting_duplicates:
        count = report.identical_duplicates + report.conflicting_duplicates
        errors.append(f"{count} duplicate timestamps")
    if report.out_of_order:
        errors.append(f"{report.out_of_order} rows out of order")
    for name, count in report.problem_counts.items():
        errors.append(f"{count} rows: {name}")
    if report.gaps != manifest.gaps:
        errors.append(
            f"gaps found ({len(report.gaps)}) differ from the manifest ({len(manifest.gaps)})"
        )
    return errors


def _leftovers(root: Path, directory: Path, manifest: SeriesManifest) -> tuple[str, ...]:
    named = {directory / f.path for f in manifest.files}
    found = [
        p
        for p in sorted(directory.glob("year=*/*"))
        if p not in named and (p.suffix == ".parquet" or p.name.endswith(TEMP_SUFFIX))
    ]
    return tuple(p.relative_to(root).as_posix() for p in found)
