from pathlib import Path

from backtester.data.layout import SeriesKey, symbol_dir
from backtester.data.series_manifest import (
    FileEntry,
    SeriesManifest,
    SourceEntry,
    add_source,
    load_manifest,
    merge_ranges,
    missing_ranges,
    write_manifest,
)
from backtester.data.validation import Gap


def test_merge_ranges_joins_overlapping_and_touching_ranges() -> None:
    assert merge_ranges([(5, 7), (0, 2), (2, 3), (6, 9), (20, 20)]) == ((0, 3), (5, 9))


def test_missing_ranges_are_the_holes_and_ends_outside_coverage() -> None:
    have = merge_ranges([(10, 20), (30, 40)])
    assert missing_ranges((0, 50), have) == [(0, 10), (20, 30), (40, 50)]
    assert missing_ranges((12, 18), have) == []
    assert missing_ranges((15, 35), have) == [(20, 30)]


def test_manifest_round_trips_through_its_json_file(tmp_path: Path) -> None:
    manifest = SeriesManifest(
        exchange="binance",
        market="swap",
        symbol="BTC/USDT:USDT",
        timeframe="1m",
        kind="ohlcv",
        interval_ms=60_000,
        rows=2,
        first_ms=0,
        last_ms=60_000,
        files=(FileEntry("year=1970/part-00.parquet", "ab" * 32, 2, 0, 60_000),),
        coverage=((0, 120_000),),
        gaps=(Gap(180_000, 240_000, 1),),
        sources=add_source((), SourceEntry("import", "csv: x.csv")),
    )
    write_manifest(tmp_path, manifest)
    path = tmp_path / "binance" / "swap" / "BTC-USDT-USDT" / "1m" / "manifest.json"
    assert path.is_file()
    assert load_manifest(tmp_path, manifest.key) == manifest


def test_symbol_directory_names() -> None:
    assert symbol_dir("BTC/USDT") == "BTC-USDT"
    assert symbol_dir("BTC/USDT:USDT") == "BTC-USDT-USDT"
    assert SeriesKey("binance", "spot", "BTC-USDT", "1m").relative_dir().as_posix() == (
        "binance/spot/BTC-USDT/1m"
    )
