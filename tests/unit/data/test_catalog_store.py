"""Catalog writes: layout, merge rule, and that no failure leaves the catalog half-written."""

from pathlib import Path

import polars as pl
import pytest
from catalog_helpers import KEY, MINUTE, SOURCE, minute_bars, snapshot, write

from backtester.data import store
from backtester.data.atomic import exclusive_lock, sha256_file
from backtester.data.audit import audit_series
from backtester.data.catalog import read_series
from backtester.data.errors import CatalogError, DataError
from backtester.data.layout import LOCK_NAME, series_dir
from backtester.data.series_manifest import load_manifest
from backtester.data.store import write_series
from backtester.data.validation import find_gaps, find_gaps_within

DATA = Path(__file__).resolve().parents[2] / "data"
NEW_YEAR_2024 = 1_704_067_200_000


def test_real_series_round_trips_exactly_with_int64_ms_and_float64_columns(tmp_path: Path) -> None:
    raw = pl.read_csv(DATA / "binance_BTC-USDT_1m.csv")
    manifest, report = write(tmp_path, raw)
    expected = raw.unique("timestamp_ms", keep="last", maintain_order=True).sort("timestamp_ms")
    read = read_series(tmp_path, "binance", "BTC/USDT", "1m")
    assert read.frame.equals(expected)
    assert dict(read.frame.schema) == {
        "timestamp_ms": pl.Int64,
        **{c: pl.Float64 for c in ("open", "high", "low", "close", "volume")},
    }
    assert (manifest.rows, manifest.first_ms, manifest.last_ms) == (
        30_900,
        1_709_251_200_000,
        1_711_105_140_000,
    )
    assert report.identical_duplicates == 30
    assert manifest.coverage == ((1_709_251_200_000, 1_711_105_200_000),)
    (entry,) = manifest.files
    assert entry.path.startswith("year=2024/part-")
    path = tmp_path / "binance/spot/BTC-USDT/1m" / entry.path
    assert sha256_file(path) == entry.sha256
    assert path.name == f"part-{entry.sha256[:16]}.parquet"


def test_series_crossing_new_year_is_split_into_year_partitions(tmp_path: Path) -> None:
    manifest, _ = write(tmp_path, minute_bars(NEW_YEAR_2024 - 60 * MINUTE, 120))
    assert [(f.path.split("/")[0], f.rows) for f in manifest.files] == [
        ("year=2023", 60),
        ("year=2024", 60),
    ]
    assert manifest.files[1].first_ms == NEW_YEAR_2024


def test_invalid_batch_leaves_the_catalog_untouched(tmp_path: Path) -> None:
    write(tmp_path, minute_bars(NEW_YEAR_2024, 100))
    before = snapshot(tmp_path)
    bad = minute_bars(NEW_YEAR_2024 + 100 * MINUTE, 10).with_columns(
        high=pl.when(pl.col("timestamp_ms") == NEW_YEAR_2024 + 105 * MINUTE)
        .then(1.0)
        .otherwise(pl.col("high"))
    )
    with pytest.raises(DataError, match="row 5: high below low"):
        write(tmp_path, bad)
    assert snapshot(tmp_path) == before


def test_crash_before_the_manifest_commit_keeps_the_old_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, minute_bars(NEW_YEAR_2024, 100))
    before = read_series(tmp_path, "binance", "BTC/USDT", "1m").frame

    def power_cut(*_: object) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(store, "write_manifest", power_cut)
    with pytest.raises(RuntimeError, match="power cut"):
        write(tmp_path, minute_bars(NEW_YEAR_2024 + 100 * MINUTE, 50))
    monkeypatch.undo()

    assert read_series(tmp_path, "binance", "BTC/USDT", "1m").frame.equals(before)
    manifest = load_manifest(tmp_path, KEY)
    assert manifest is not None
    audit = audit_series(tmp_path, manifest)
    assert audit.ok
    assert len(audit.leftovers) == 1  # the new partition file, named by no manifest

    manifest, _ = write(tmp_path, minute_bars(NEW_YEAR_2024 + 100 * MINUTE, 50))
    assert manifest.rows == 150
    assert audit_series(tmp_path, manifest).leftovers == ()


def test_crash_while_writing_a_partition_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, minute_bars(NEW_YEAR_2024, 100))
    before = snapshot(tmp_path)

    def disk_full(self: Path, target: Path) -> Path:
        raise OSError("no space left on device")

    monkeypatch.setattr(Path, "replace", disk_full)
    with pytest.raises(OSError, match="no space"):
        write(tmp_path, minute_bars(NEW_YEAR_2024 + 100 * MINUTE, 50))
    monkeypatch.undo()
    assert snapshot(tmp_path) == before


def test_overlapping_write_later_rows_win_and_are_counted(tmp_path: Path) -> None:
    write(tmp_path, minute_bars(NEW_YEAR_2024, 100))
    revised = minute_bars(NEW_YEAR_2024 + 90 * MINUTE, 20, close_shift=0.25)
    manifest, report = write(tmp_path, revised)
    assert manifest.rows == 110
    assert report.replaced_stored == 10
    frame = read_series(tmp_path, "binance", "BTC/USDT", "1m").frame
    tail = frame.filter(pl.col("timestamp_ms") >= NEW_YEAR_2024 + 90 * MINUTE)
    assert tail.equals(revised)


def test_writing_the_same_rows_again_changes_no_data_file(tmp_path: Path) -> None:
    first, _ = write(tmp_path, minute_bars(NEW_YEAR_2024, 100))
    second, report = write(tmp_path, minute_bars(NEW_YEAR_2024 + 10 * MINUTE, 20))
    assert second.files == first.files
    assert report.replaced_stored == 0


def test_tampered_partition_is_refused_instead_of_merged(tmp_path: Path) -> None:
    manifest, _ = write(tmp_path, minute_bars(NEW_YEAR_2024, 100))
    path = series_dir(tmp_path, KEY) / manifest.files[0].path
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(CatalogError, match="content hash does not match"):
        write(tmp_path, minute_bars(NEW_YEAR_2024 + 100 * MINUTE, 5))


def test_second_writer_of_a_series_fails_fast(tmp_path: Path) -> None:
    write(tmp_path, minute_bars(NEW_YEAR_2024, 10))
    with (
        exclusive_lock(series_dir(tmp_path, KEY) / LOCK_NAME, "holder"),
        pytest.raises(CatalogError, match="another process is writing"),
    ):
        write(tmp_path, minute_bars(NEW_YEAR_2024 + 10 * MINUTE, 10))


def test_interval_must_match_the_stored_series(tmp_path: Path) -> None:
    write(tmp_path, minute_bars(NEW_YEAR_2024, 10))
    with pytest.raises(CatalogError, match="stored with interval 60000 ms"):
        write_series(
            tmp_path, KEY, minute_bars(NEW_YEAR_2024, 10), interval_ms=5 * MINUTE, source=SOURCE
        )


def test_explicit_coverage_is_recorded_and_merged(tmp_path: Path) -> None:
    write_series(
        tmp_path,
        KEY,
        minute_bars(NEW_YEAR_2024, 10),
        interval_ms=MINUTE,
        source=SOURCE,
        covered=[(NEW_YEAR_2024 - 5 * MINUTE, NEW_YEAR_2024 + 30 * MINUTE)],
    )
    manifest, _ = write_series(
        tmp_path,
        KEY,
        minute_bars(NEW_YEAR_2024 + 30 * MINUTE, 10),
        interval_ms=MINUTE,
        source=SOURCE,
    )
    assert manifest.coverage == ((NEW_YEAR_2024 - 5 * MINUTE, NEW_YEAR_2024 + 40 * MINUTE),)
    # The covered minutes before the first row are missing at the source too.
    assert [(g.start_ms, g.missing) for g in manifest.gaps] == [
        (NEW_YEAR_2024 - 5 * MINUTE, 5),
        (NEW_YEAR_2024 + 10 * MINUTE, 20),
    ]


def test_gaps_within_coverage_count_the_edges_and_ranges_without_rows() -> None:
    stamps = pl.Series([10 * MINUTE, 11 * MINUTE, 15 * MINUTE], dtype=pl.Int64)
    coverage = [(8 * MINUTE, 18 * MINUTE), (30 * MINUTE, 33 * MINUTE)]
    gaps = find_gaps_within(stamps, MINUTE, coverage)
    assert [(g.start_ms // MINUTE, g.end_ms // MINUTE, g.missing) for g in gaps] == [
        (8, 10, 2),  # covered, before the first row
        (12, 15, 3),  # between rows
        (16, 18, 2),  # covered, after the last row
        (30, 33, 3),  # covered, no rows at all
    ]
    # An edge next to a row outside its range is part of the gap between the two rows.
    assert find_gaps_within(stamps, MINUTE, [(12 * MINUTE, 14 * MINUTE)]) == find_gaps(
        stamps, MINUTE
    )
