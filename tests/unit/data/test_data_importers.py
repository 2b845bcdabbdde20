"""Each import format read from real files, equal to the same rows in the normalized layout."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from pyarrow import feather

from backtester.data.errors import DataError
from backtester.data.importers import detect_format, read_file

DATA = Path(__file__).resolve().parents[2] / "data"
FREQTRADE = DATA / "freqtrade"


def test_normalized_csv_is_read_as_is() -> None:
    frame = read_file(DATA / "binance_BTC-USDT_1m.csv", "ohlcv")
    assert frame.equals(pl.read_csv(DATA / "binance_BTC-USDT_1m.csv"))


def test_binance_12_column_klines_without_header() -> None:
    path = DATA / "binance_klines" / "ADABTC-1m-2021-11-27.csv"
    assert detect_format(path) == "binance-klines"
    frame = read_file(path, "ohlcv")
    assert frame.height == 10
    assert frame.row(0) == (1_637_971_200_000, 2.853e-05, 2.854e-05, 2.851e-05, 2.854e-05, 36304.2)
    assert frame["timestamp_ms"].diff().drop_nulls().unique().to_list() == [60_000]


def test_binance_klines_with_header_and_microsecond_times(tmp_path: Path) -> None:
    source = (DATA / "binance_klines" / "ADABTC-1m-2021-11-27.csv").read_text().splitlines()
    header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    header += "taker_buy_volume,taker_buy_quote_volume,ignore"
    # data.binance.vision switched spot files to microseconds in 2025.
    micro = [",".join([f"{line.split(',')[0]}000", *line.split(",")[1:]]) for line in source]
    path = tmp_path / "ADABTC-1m.csv"
    path.write_text("\n".join([header, *micro]) + "\n")
    original = read_file(DATA / "binance_klines" / "ADABTC-1m-2021-11-27.csv", "ohlcv")
    assert read_file(path, "ohlcv").equals(original)


def test_freqtrade_json_candles_are_read_exactly() -> None:
    path = FREQTRADE / "XRP_USDT_USDT-1h-futures.json"
    frame = read_file(path, "ohlcv")
    assert frame.rows() == [tuple(r) for r in json.loads(path.read_text())]
    assert frame["timestamp_ms"][0] == 1_637_110_800_000  # 2021-11-17 01:00 UTC


def test_freqtrade_feather_candles_are_read_exactly_through_pyarrow() -> None:
    path = FREQTRADE / "XRP_USDT_USDT-1h-futures.feather"
    frame = read_file(path, "ohlcv")
    table = feather.read_table(path)
    nanos = table.column("date").cast(pa.int64()).to_pylist()
    assert frame["timestamp_ms"].to_list() == [n // 1_000_000 for n in nanos]
    for name in ("open", "high", "low", "close", "volume"):
        assert frame[name].to_list() == table.column(name).to_pylist()
    # The feather copy comes from a later freqtrade commit than the JSON: same bars, values
    # equal up to float round-off.
    from_json = read_file(FREQTRADE / "XRP_USDT_USDT-1h-futures.json", "ohlcv")
    assert frame["timestamp_ms"].equals(from_json["timestamp_ms"])
    assert np.allclose(frame.to_numpy(), from_json.to_numpy(), rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "path",
    [
        DATA / "freqtrade_XRP-USDT-USDT_8h_funding_rate.csv",
        FREQTRADE / "XRP_USDT_USDT-8h-funding_rate.json",
        FREQTRADE / "XRP_USDT_USDT-8h-funding_rate.feather",
    ],
)
def test_funding_rates_from_csv_json_and_feather_agree(path: Path) -> None:
    frame = read_file(path, "funding")
    expected = pl.read_csv(DATA / "freqtrade_XRP-USDT-USDT_8h_funding_rate.csv")
    assert frame["timestamp_ms"].equals(expected["timestamp_ms"])
    assert np.allclose(frame["funding_rate"], expected["funding_rate"], rtol=1e-12, atol=0)
    if path.suffix != ".feather":
        assert frame.equals(expected)


def test_iso_date_strings_are_utc_unless_they_carry_an_offset(tmp_path: Path) -> None:
    naive = tmp_path / "naive.csv"
    naive.write_text("Date,Open,High,Low,Close,Volume\n2024-03-01 00:00:00,1,2,0.5,1.5,10\n")
    offset = tmp_path / "offset.csv"
    offset.write_text("date,open,high,low,close,volume\n2024-03-01T01:00:00+01:00,1,2,0.5,1.5,10\n")
    assert read_file(naive, "ohlcv")["timestamp_ms"].to_list() == [1_709_251_200_000]
    assert read_file(offset, "ohlcv")["timestamp_ms"].to_list() == [1_709_251_200_000]


def test_unreadable_inputs_are_named(tmp_path: Path) -> None:
    headerless = tmp_path / "plain.csv"
    headerless.write_text("1709251200000,1,2,0.5,1.5,10\n")
    with pytest.raises(DataError, match="without a header"):
        read_file(headerless, "ohlcv")
    no_close = tmp_path / "no_close.csv"
    no_close.write_text("timestamp_ms,open,high,low,volume\n1709251200000,1,2,0.5,10\n")
    with pytest.raises(DataError, match=r"no_close.csv: missing column\(s\) close"):
        read_file(no_close, "ohlcv")
    bad_date = tmp_path / "bad_date.csv"
    bad_date.write_text("date,open,high,low,close,volume\nyesterday,1,2,0.5,1.5,10\n")
    with pytest.raises(
        DataError, match=r"row 0 \(0-based data row as read\): date='yesterday' is not a date-time"
    ):
        read_file(bad_date, "ohlcv")
    with pytest.raises(DataError, match="no such file"):
        read_file(tmp_path / "missing.csv", "ohlcv")
    with pytest.raises(DataError, match="pass --format"):
        read_file(DATA.parent / "unit" / "data" / "catalog_helpers.py", "ohlcv")


def test_an_unnamed_first_column_of_dates_is_the_time(tmp_path: Path) -> None:
    frame = read_file(DATA / "backtesting_py_GOOG.csv", "ohlcv")
    assert frame.columns == ["timestamp_ms", "open", "high", "low", "close", "volume"]
    assert frame.height == 2148
    assert frame.row(0) == (1_092_873_600_000, 100.0, 104.06, 95.96, 100.34, 22_351_900.0)


def test_text_in_a_price_column_is_not_a_number_with_its_row(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(
        "timestamp_ms,open,high,low,close,volume\n"
        "1709251200000,1,2,0.5,1.5,10\n"
        "1709251260000,1,abc,0.5,1.5,10\n"
    )
    with pytest.raises(DataError) as caught:
        read_file(path, "ohlcv")
    assert (
        str(caught.value) == f"{path}: row 1 (0-based data row as read): high='abc' is not a number"
    )
