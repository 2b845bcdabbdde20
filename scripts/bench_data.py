"""Read speed of the catalog versus CSV for one year of 1-minute bars (525,600 rows), same run.

Generates a deterministic synthetic year (2023, seeded random walk, prices to the cent like
BTC/USDT, volumes to 5 decimals), writes it once into a temporary catalog and once as CSV, checks
both read back to the same frame, then times the two reads alternately (so a busy machine slows
both alike) and prints the best and median of each and the ratio. Targets: catalog at least 10x
faster than CSV and under 0.2 s. The catalog read is the full `read_series` call (manifest, file
selection, lazy scan); the CSV read is `polars.read_csv` with the schema given.

    PYTHONPATH=. python scripts/bench_data.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from backtester.data.catalog import read_series
from backtester.data.layout import SeriesKey
from backtester.data.series_manifest import SourceEntry
from backtester.data.store import write_series

ROWS = 525_600
START_MS = 1_672_531_200_000  # 2023-01-01 00:00 UTC
MINUTE = 60_000
SCHEMA = {
    "timestamp_ms": pl.Int64,
    **dict.fromkeys(("open", "high", "low", "close", "volume"), pl.Float64),
}


def synthetic_year(seed: int = 20230101) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.round(16_500.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, ROWS))), 2)
    open_ = np.concatenate([[16_500.0], close[:-1]])
    high = np.round(np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, 0.0005, ROWS))), 2)
    low = np.round(np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, 0.0005, ROWS))), 2)
    return pl.DataFrame(
        {
            "timestamp_ms": START_MS + np.arange(ROWS, dtype=np.int64) * MINUTE,
            "open": open_,
            "high": np.maximum(high, np.maximum(open_, close)),
            "low": np.minimum(low, np.minimum(open_, close)),
            "close": close,
            "volume": np.round(rng.gamma(2.0, 5.0, ROWS), 5),
        }
    )


def timings(
    read_catalog: Callable[[], object], read_csv: Callable[[], object], repeats: int
) -> tuple[list[float], list[float]]:
    catalog, csv = [], []
    for _ in range(repeats):
        for read, sink in ((read_catalog, catalog), (read_csv, csv)):
            started = time.perf_counter()
            read()
            sink.append(time.perf_counter() - started)
    return catalog, csv


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    frame = synthetic_year()
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp) / "catalog"
        csv_path = Path(temp) / "BTC-USDT_1m_2023.csv"
        key = SeriesKey("bench", "spot", "BTC/USDT", "1m")
        manifest, _ = write_series(
            root, key, frame, interval_ms=MINUTE, source=SourceEntry("bench", "synthetic 2023")
        )
        frame.write_csv(csv_path)

        def read_catalog() -> pl.DataFrame:
            return read_series(
                root, "bench", "BTC/USDT", "1m", start="2023-01-01", end="2024-01-01"
            ).frame

        def read_csv() -> pl.DataFrame:
            return pl.read_csv(csv_path, schema=SCHEMA)

        if not (read_catalog().equals(frame) and read_csv().equals(frame)):
            print("error: the two reads differ from the generated rows", file=sys.stderr)
            return 1
        catalog, csv = timings(read_catalog, read_csv, args.repeats)
        parquet_mb = (
            sum((root / "bench/spot/BTC-USDT/1m" / f.path).stat().st_size for f in manifest.files)
            / 1e6
        )
        csv_mb = csv_path.stat().st_size / 1e6

    best_catalog, best_csv = min(catalog), min(csv)
    median_catalog, median_csv = statistics.median(catalog), statistics.median(csv)
    ratio = best_csv / best_catalog
    lines = [
        f"rows: {ROWS:,} (one year of 1-minute bars), {args.repeats} alternating reads each",
        f"catalog (Parquet, zstd): {parquet_mb:6.1f} MB  "
        f"best {best_catalog:.4f} s  median {median_catalog:.4f} s",
        f"CSV (polars read_csv):   {csv_mb:6.1f} MB  "
        f"best {best_csv:.4f} s  median {median_csv:.4f} s",
        f"catalog faster by: {ratio:.1f}x best-to-best, "
        f"{median_csv / median_catalog:.1f}x median-to-median",
        f"targets: >= 10x faster: {'met' if ratio >= 10 else 'NOT met'}; "
        f"under 0.2 s: {'met' if best_catalog < 0.2 else 'NOT met'}",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
