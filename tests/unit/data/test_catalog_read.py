"""The read API the engine and run configs use: selection, pruning, hashes, resampling."""

from pathlib import Path

import polars as pl
import pytest
from catalog_helpers import KEY, MINUTE, minute_bars, write

from backtester.data import catalog
from backtester.data.atomic import sha256_file
from backtester.data.bars import load_bars
from backtester.data.catalog import list_series, read_series
from backtester.data.errors import CatalogError
from backtester.data.layout import SeriesKey
from backtester.data.resample import resample

DATA = Path(__file__).resolve().parents[2] / "data"
NEW_YEAR_2024 = 1_704_067_200_000
HOUR = 60 * MINUTE


@pytest.fixture
def two_years(tmp_path: Path) -> Path:
    write(tmp_path, minute_bars(NEW_YEAR_2024 - 3 * HOUR, 6 * 60))
    return tmp_path


def test_window_reads_only_the_partitions_it_overlaps(two_years: Path) -> None:
    read = read_series(
        two_years, "binance", "BTC/USDT", "1m", start="2024-01-01T01:00", end="2024-01-01T02:00"
    )
    assert [p.path.split("/")[-2] for p in read.partitions] == ["year=2024"]
    stamps = read.frame["timestamp_ms"]
    assert (stamps.min(), stamps.max(), read.frame.height) == (
        NEW_YEAR_2024 + HOUR,
        NEW_YEAR_2024 + 2 * HOUR - MINUTE,
        60,
    )
    everything = read_series(two_years, "binance", "BTC/USDT", "1m")
    assert len(everything.partitions) == 2
    assert everything.frame.height == 360


def test_partitions_name_file_paths_from_the_root_with_their_content_hashes(
    two_years: Path,
) -> None:
    read = read_series(two_years, "binance", "BTC/USDT", "1m", start=NEW_YEAR_2024 - HOUR)
    for part in read.partitions:
        assert part.path.startswith("binance/spot/BTC-USDT/1m/year=")
        assert sha256_file(two_years / part.path) == part.sha256
    assert sum(p.rows for p in read.partitions) == 360


def test_columns_selects_only_what_is_asked_plus_the_timestamp(two_years: Path) -> None:
    read = read_series(two_years, "binance", "BTC/USDT", "1m", columns=["close"])
    assert read.frame.columns == ["timestamp_ms", "close"]
    with pytest.raises(CatalogError, match="unknown column"):
        read_series(two_years, "binance", "BTC/USDT", "1m", columns=["vwap"])


def test_verify_rehashes_files_and_catches_a_changed_one(two_years: Path) -> None:
    read = read_series(two_years, "binance", "BTC/USDT", "1m", verify=True)
    target = two_years / read.partitions[-1].path
    target.write_bytes(target.read_bytes() + b"\0")
    # A window before 2024 neither opens nor hashes the changed 2024 file.
    earlier = read_series(two_years, "binance", "BTC/USDT", "1m", end=NEW_YEAR_2024, verify=True)
    assert earlier.frame.height == 180
    with pytest.raises(CatalogError, match="content hash does not match"):
        read_series(two_years, "binance", "BTC/USDT", "1m", verify=True)


def test_a_higher_timeframe_is_resampled_from_the_stored_one(tmp_path: Path) -> None:
    raw = pl.read_csv(DATA / "binance_BTC-USDT_1m.csv")
    write(tmp_path, raw)
    read = read_series(
        tmp_path, "binance", "BTC/USDT", "1h", start="2024-03-01T00:30", end="2024-03-02T00:00"
    )
    assert read.source_timeframe == "1m"
    assert read.frame.height == 23  # 01:00 .. 23:00: the 00:00 bar would start before `start`
    minutes = read_series(tmp_path, "binance", "BTC/USDT", "1m").frame
    expected = resample(minutes, MINUTE, HOUR).filter(
        pl.col("timestamp_ms").is_between(1_709_254_800_000, 1_709_334_000_000)
    )
    assert read.frame.equals(expected)


def test_missing_series_names_what_is_there(two_years: Path) -> None:
    with pytest.raises(CatalogError, match=r"stored timeframes: 1m"):
        read_series(two_years, "binance", "BTC/USDT", "90s")
    with pytest.raises(CatalogError, match="stored timeframes: none"):
        read_series(two_years, "binance", "ETH/USDT", "1m")


def test_the_frame_loads_into_the_engine_bar_format(two_years: Path) -> None:
    read = read_series(two_years, "binance", "BTC/USDT", "1m")
    bars = load_bars(read.frame, name="catalog")
    assert bars.frame["ts"][0] == (NEW_YEAR_2024 - 3 * HOUR) * 1_000_000
    assert bars.frame.height == 360


def test_list_series_returns_every_manifest(two_years: Path) -> None:
    other = SeriesKey("binance", "spot", "ETH/USDT", "1m")
    write(two_years, minute_bars(NEW_YEAR_2024, 5), key=other)
    assert [(m.symbol, m.rows) for m in list_series(two_years)] == [
        ("BTC/USDT", 360),
        ("ETH/USDT", 5),
    ]
    assert list_series(two_years)[0].key == KEY


def test_a_read_racing_a_write_rereads_the_new_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale, _ = write(tmp_path, minute_bars(NEW_YEAR_2024, 60))
    fresh, _ = write(tmp_path, minute_bars(NEW_YEAR_2024 + HOUR, 60))  # replaces the year file
    answers = [stale, fresh]
    monkeypatch.setattr(catalog, "_find_manifest", lambda root, key: answers.pop(0))
    read = read_series(tmp_path, "binance", "BTC/USDT", "1m")
    assert answers == []
    assert read.frame.height == 120
    assert read.manifest == fresh
