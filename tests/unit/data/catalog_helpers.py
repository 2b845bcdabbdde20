"""Shared builders for the catalog tests: hand-built calm bars and a one-call write."""

from pathlib import Path

import polars as pl

from backtester.data.layout import SeriesKey
from backtester.data.series_manifest import SeriesManifest, SourceEntry
from backtester.data.store import write_series
from backtester.data.validation import ValidationReport

MINUTE = 60_000
KEY = SeriesKey("binance", "spot", "BTC/USDT", "1m")
SOURCE = SourceEntry("import", "test")


def minute_bars(start_ms: int, count: int, *, close_shift: float = 0.0) -> pl.DataFrame:
    """Calm, valid bars every minute; prices follow the clock, so a bar is the same whatever
    batch it is built in, and rows differ from each other."""
    rows = []
    for i in range(count):
        ts = start_ms + i * MINUTE
        base = 100.0 + (ts // MINUTE % 50) * 0.1
        rows.append((ts, base, base + 1.0, base - 1.0, base + 0.5 + close_shift, 2.0))
    return pl.DataFrame(
        rows, schema=["timestamp_ms", "open", "high", "low", "close", "volume"], orient="row"
    )


def write(
    root: Path, frame: pl.DataFrame, key: SeriesKey = KEY
) -> tuple[SeriesManifest, ValidationReport]:
    return write_series(root, key, frame, interval_ms=MINUTE, source=SOURCE)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under the root with its bytes (lock files excluded: they hold no data)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }
