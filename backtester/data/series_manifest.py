"""The manifest of one catalog series: the only list of its files, and what is known about its data.

`manifest.json` is written last, atomically, after every partition file it names is on disk: it is
the commit point. Files on disk that it does not name are leftovers of an interrupted write and are
removed by the next write. `coverage` holds the time ranges [start, end) known to be complete at the
source (everything the exchange had there is stored), which is what lets a second fetch request only
what is missing while real exchange gaps inside a covered range are not requested again and again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec

from backtester.data.atomic import atomic_write_bytes
from backtester.data.errors import CatalogError
from backtester.data.layout import MANIFEST_NAME, Price, SeriesKey, series_dir
from backtester.data.validation import Gap, Spike, ValidationReport

FORMAT_VERSION = 1
Range = tuple[int, int]


class FileEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str
    sha256: str
    rows: int
    first_ms: int
    last_ms: int


class SourceEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: str
    detail: str


class SeriesManifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    exchange: str
    market: str
    symbol: str
    timeframe: str
    kind: str
    interval_ms: int
    rows: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    files: tuple[FileEntry, ...] = ()
    coverage: tuple[Range, ...] = ()
    gaps: tuple[Gap, ...] = ()
    spikes: tuple[Spike, ...] = ()
    sources: tuple[SourceEntry, ...] = ()
    last_write: ValidationReport | None = None
    format: int = FORMAT_VERSION
    price: Price = "trade"

    @property
    def key(self) -> SeriesKey:
        return SeriesKey(self.exchange, self.market, self.symbol, self.timeframe, self.price)


_encoder = msgspec.json.Encoder(order="deterministic")
_decoder = msgspec.json.Decoder(SeriesManifest)


def manifest_path(root: Path, key: SeriesKey) -> Path:
    return series_dir(root, key) / MANIFEST_NAME


def read_manifest(path: Path) -> SeriesManifest:
    try:
        manifest = _decoder.decode(path.read_bytes())
    except FileNotFoundError as exc:
        raise CatalogError(f"{path}: no such series manifest") from exc
    except msgspec.ValidationError as exc:
        raise CatalogError(f"{path}: invalid manifest: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise CatalogError(f"{path}: manifest is not valid JSON: {exc}") from exc
    if manifest.format != FORMAT_VERSION:
        raise CatalogError(f"{path}: manifest format {manifest.format} is not {FORMAT_VERSION}")
    return manifest


def load_manifest(root: Path, key: SeriesKey) -> SeriesManifest | None:
    path = manifest_path(root, key)
    return read_manifest(path) if path.is_file() else None


def write_manifest(root: Path, manifest: SeriesManifest) -> None:
    # Indented: people read manifests; the format is still canonical (keys in field order).
    text = msgspec.json.format(_encoder.encode(manifest), indent=1)
    atomic_write_bytes(manifest_path(root, manifest.key), text + b"\n")


def merge_ranges(ranges: Iterable[Range]) -> tuple[Range, ...]:
    """Union of [start, end) ranges; touching ranges join."""
    merged: list[list[int]] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((a, b) for a, b in merged)


def missing_ranges(wanted: Range, have: Sequence[Range]) -> list[Range]:
    """Parts of `wanted` not inside any of `have` (merged, as `merge_ranges` returns them)."""
    start, end = wanted
    missing = []
    cursor = start
    for a, b in have:
        if b <= cursor or a >= end:
            continue
        if a > cursor:
            missing.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < end:
        missing.append((cursor, end))
    return missing


def add_source(sources: tuple[SourceEntry, ...], source: SourceEntry) -> tuple[SourceEntry, ...]:
    return sources if source in sources else (*sources, source)
