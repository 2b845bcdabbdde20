"""Mark-price candles in the catalog: a series of their own next to the trades' candles, never
mistaken for them (reads, resampling, listing)."""

from pathlib import Path

import pytest
from catalog_helpers import MINUTE, minute_bars, write

from backtester.data.catalog import list_series, read_series
from backtester.data.errors import DataError
from backtester.data.layout import SeriesKey

T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC
TRADES = SeriesKey("binance", "swap", "BTC/USDT:USDT", "1m")
MARKS = SeriesKey("binance", "swap", "BTC/USDT:USDT", "1m", "mark")


def test_marks_and_trades_of_one_contract_are_separate_series(tmp_path: Path) -> None:
    write(tmp_path, minute_bars(T0, 120), TRADES)
    write(tmp_path, minute_bars(T0, 120, close_shift=0.25), MARKS)
    trades = read_series(tmp_path, "binance", "BTC/USDT:USDT", "1m", market="swap").frame
    marks = read_series(
        tmp_path, "binance", "BTC/USDT:USDT", "1m", market="swap", price="mark"
    ).frame
    assert (marks["close"] - trades["close"]).to_list() == [0.25] * 120
    directory = tmp_path / "binance" / "swap" / "BTC-USDT-USDT"
    assert sorted(p.name for p in directory.iterdir()) == ["1m", "mark-1m"]
    assert [(m.timeframe, m.price) for m in list_series(tmp_path)] == [
        ("1m", "trade"),
        ("1m", "mark"),
    ]
    assert MARKS.label() == "binance swap BTC/USDT:USDT 1m mark"


def test_an_hour_of_marks_is_resampled_from_minute_marks_only(tmp_path: Path) -> None:
    write(tmp_path, minute_bars(T0, 120), TRADES)
    with pytest.raises(DataError, match="1h mark: not in the catalog"):
        read_series(tmp_path, "binance", "BTC/USDT:USDT", "1h", market="swap", price="mark")
    write(tmp_path, minute_bars(T0, 120, close_shift=0.25), MARKS)
    hourly = read_series(tmp_path, "binance", "BTC/USDT:USDT", "1h", market="swap", price="mark")
    assert hourly.source_timeframe == "1m" and hourly.manifest.price == "mark"
    assert hourly.frame["close"][0] == minute_bars(T0, 60, close_shift=0.25)["close"][-1]
    assert hourly.frame["timestamp_ms"].to_list() == [T0, T0 + 60 * MINUTE]


def test_mark_candles_belong_to_contracts() -> None:
    with pytest.raises(DataError, match="contracts only"):
        SeriesKey("binance", "spot", "BTC/USDT", "1m", "mark")
    with pytest.raises(DataError, match="contracts only"):
        SeriesKey("binance", "swap", "BTC/USDT:USDT", "funding", "mark")
