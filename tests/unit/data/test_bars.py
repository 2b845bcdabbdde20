"""Loading bars: DataFrame, Parquet and CSV sources, validation naming the first bad row, and repair."""

from __future__ import annotations

import math
import re
from pathlib import Path

import polars as pl
import pytest

from backtester.data.bars import DataError, bar_step_ns, load_bars

BINANCE_CSV = Path(__file__).resolve().parents[2] / "data" / "binance_BTC-USDT_1m.csv"
T0 = 1_700_000_000_000


def frame(**overrides: list[float]) -> pl.DataFrame:
    """Five valid one-minute bars; keyword arguments replace whole columns."""
    columns: dict[str, list[float]] = {
        "timestamp_ms": [T0 + i * 60_000 for i in range(5)],
        "open": [10.0, 11.0, 12.0, 13.0, 14.0],
        "high": [11.0, 12.0, 13.0, 14.0, 15.0],
        "low": [9.0, 10.0, 11.0, 12.0, 13.0],
        "close": [10.5, 11.5, 12.5, 13.5, 14.5],
        "volume": [1.0, 2.0, 3.0, 4.0, 5.0],
    }
    columns.update(overrides)
    return pl.DataFrame(columns)


def replaced(column: str, row: int, value: float) -> pl.DataFrame:
    values = frame()[column].to_list()
    values[row] = value
    return frame(**{column: values})


# --- sources --------------------------------------------------------------------------------------


def test_dataframe_is_converted_to_the_canonical_frame() -> None:
    bars = load_bars(frame())
    assert bars.frame.columns == ["ts", "open", "high", "low", "close", "volume"]
    assert bars.frame["ts"].to_list() == [(T0 + i * 60_000) * 1_000_000 for i in range(5)]
    assert bars.frame.schema["ts"] == pl.Int64
    assert all(bars.frame.schema[c] == pl.Float64 for c in ("open", "high", "low", "close"))
    assert bars.source == "<DataFrame>"
    assert bars.repair is None


def test_parquet_and_csv_files_load_to_the_same_frame(tmp_path: Path) -> None:
    parquet, csv = tmp_path / "bars.parquet", tmp_path / "bars.csv"
    frame().write_parquet(parquet)
    frame().write_csv(csv)
    from_frame = load_bars(frame()).frame
    assert load_bars(parquet).frame.equals(from_frame)
    assert load_bars(csv).frame.equals(from_frame)
    assert load_bars(csv).source == str(csv)


def test_datetime_timestamp_column_and_extra_columns_are_kept(tmp_path: Path) -> None:
    source = (
        frame()
        .with_columns(
            pl.from_epoch("timestamp_ms", time_unit="ms")
            .dt.replace_time_zone("UTC")
            .alias("timestamp"),
            pl.lit(1.5).alias("signal"),
        )
        .drop("timestamp_ms")
    )
    bars = load_bars(source)
    assert bars.frame["ts"].to_list() == load_bars(frame()).frame["ts"].to_list()
    assert bars.frame["signal"].to_list() == [1.5] * 5


def test_integer_timestamp_unit_is_inferred_from_magnitude() -> None:
    seconds = frame().with_columns((pl.col("timestamp_ms") // 1000).alias("timestamp"))
    bars = load_bars(seconds.drop("timestamp_ms"))
    assert bars.frame["ts"].to_list() == load_bars(frame()).frame["ts"].to_list()


def test_missing_file_and_unsupported_suffix_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data file not found"):
        load_bars(tmp_path / "absent.parquet")
    odd = tmp_path / "bars.xlsx"
    odd.write_bytes(b"not bars")
    with pytest.raises(DataError, match=r"unsupported file type '\.xlsx'"):
        load_bars(odd)


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "row", "problem"),
    [
        (
            replaced("timestamp_ms", 3, T0 + 90_000),
            3,
            "timestamp before the previous row (unsorted)",
        ),
        (replaced("timestamp_ms", 2, T0 + 60_000), 2, "duplicate timestamp"),
        (replaced("close", 4, math.nan), 4, "null or NaN value"),
        (replaced("low", 1, 0.0), 1, "non-positive price"),
        (replaced("low", 2, -1.0), 2, "non-positive price"),
        (replaced("high", 3, 13.4), 3, "high below max(open, close)"),
        (replaced("low", 1, 11.2), 1, "low above min(open, close)"),
        (replaced("volume", 2, -0.5), 2, "negative volume"),
    ],
    ids=["unsorted", "duplicate", "nan", "zero-low", "negative-low", "high", "low", "volume"],
)
def test_validation_error_names_the_first_bad_row_and_the_problem(
    bad: pl.DataFrame, row: int, problem: str
) -> None:
    with pytest.raises(
        DataError,
        match=rf"^<DataFrame>: row {row} \(0-based data row as read\): {re.escape(problem)}",
    ):
        load_bars(bad)


def test_null_value_is_reported_like_nan() -> None:
    bad = frame().with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(None).otherwise(pl.col("volume")).alias("volume")
    )
    with pytest.raises(DataError, match=r"row 2 \(0-based data row as read\): null or NaN value"):
        load_bars(bad)


def test_of_several_bad_rows_the_earliest_is_named() -> None:
    bad = replaced("volume", 3, -1.0).with_columns(
        pl.Series("high", [11.0, 12.0, 12.2, 14.0, 15.0])  # row 2: high below close 12.5
    )
    with pytest.raises(
        DataError, match=r"row 2 \(0-based data row as read\): high below max\(open, close\)"
    ):
        load_bars(bad)


REPAIR_HINT = (
    "(pass repair=True to Backtest or load_bars, or set repair = true under [[data]] in a run "
    "config: identical duplicates are dropped, the last of conflicting ones kept, rows sorted)"
)


def test_duplicate_timestamp_error_names_the_repair_option_in_both_apis() -> None:
    with pytest.raises(DataError) as caught:
        load_bars(replaced("timestamp_ms", 2, T0 + 60_000))
    assert str(caught.value).endswith(REPAIR_HINT)


def test_unsorted_timestamp_error_names_the_repair_option_too() -> None:
    with pytest.raises(DataError) as caught:
        load_bars(replaced("timestamp_ms", 3, T0 + 90_000))
    assert str(caught.value).endswith(REPAIR_HINT)


def test_repair_sorts_unsorted_rows_as_data_import_does() -> None:
    shuffled = frame()[[3, 0, 4, 1, 2]]
    bars = load_bars(shuffled, repair=True)
    assert bars.frame.equals(load_bars(frame()).frame)
    assert bars.repair is not None
    assert bars.repair.out_of_order_sorted == 3  # bars 0, 1 and 2 each come after a later one
    assert bars.repair.changed


def test_error_shows_the_bar_time_in_iso_utc_for_a_millisecond_file(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    replaced("volume", 3, -7.0).write_csv(path)
    with pytest.raises(DataError) as caught:
        load_bars(path)
    assert str(caught.value) == (
        f"{path}: row 3 (0-based data row as read): negative volume: "
        "time=2023-11-14T22:16:20Z, open=13.0, high=14.0, low=12.0, close=13.5, volume=-7.0"
    )


def test_text_in_a_price_column_is_named_as_not_a_number(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    lines = frame().write_csv().splitlines()
    cells = lines[3].split(",")
    cells[2] = "abc"  # high of data row 2
    lines[3] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as caught:
        load_bars(path)
    assert (
        str(caught.value) == f"{path}: row 2 (0-based data row as read): high='abc' is not a number"
    )


def test_after_a_repair_rows_are_still_named_as_read() -> None:
    values = frame()["timestamp_ms"].to_list()
    bad = frame(timestamp_ms=[values[1], values[0], *values[2:]]).with_columns(
        pl.Series("volume", [1.0, 2.0, 3.0, -4.0, 5.0])
    )
    with pytest.raises(
        DataError, match=r"^<DataFrame>: row 3 \(0-based data row as read\): negative"
    ):
        load_bars(bad, repair=True)


def test_error_shows_the_values_of_the_bad_row() -> None:
    with pytest.raises(
        DataError, match=r"open=13\.0, high=14\.0, low=12\.0, close=13\.5, volume=-7\.0"
    ):
        load_bars(replaced("volume", 3, -7.0))


@pytest.mark.parametrize("column", ["open", "high", "low", "close", "volume"])
def test_missing_column_is_named(column: str) -> None:
    with pytest.raises(DataError, match=rf"missing column\(s\) {column}"):
        load_bars(frame().drop(column))


def test_missing_timestamp_column_is_reported() -> None:
    with pytest.raises(DataError, match="no timestamp column"):
        load_bars(frame().drop("timestamp_ms"))


def test_empty_frame_is_rejected() -> None:
    with pytest.raises(DataError, match="no bars"):
        load_bars(frame().head(0))


# --- repair ---------------------------------------------------------------------------------------


def test_repair_of_the_binance_sample_drops_identical_and_keeps_the_last_of_conflicting_rows() -> (
    None
):
    raw = pl.read_csv(BINANCE_CSV)
    assert raw.height == 30_954
    with pytest.raises(DataError, match="duplicate"):
        load_bars(BINANCE_CSV)

    bars = load_bars(BINANCE_CSV, repair=True)
    report = bars.repair
    assert report is not None
    assert (report.rows_in, report.rows_out) == (30_954, 30_900)
    assert report.identical_duplicates_dropped == 30
    assert report.conflicting_duplicates_resolved == 24
    assert report.changed

    repaired = bars.frame.with_columns((pl.col("ts") // 1_000_000).alias("timestamp_ms"))
    assert repaired["ts"].is_sorted()
    assert repaired["ts"].n_unique() == 30_900
    # Where raw rows disagree on a timestamp, the repaired frame holds the last of them.
    values = ["open", "high", "low", "close", "volume"]
    last = raw.group_by("timestamp_ms", maintain_order=True).agg(pl.col(values).last())
    conflicting = (
        raw.unique()
        .group_by("timestamp_ms")
        .agg(pl.len().alias("versions"))
        .filter(pl.col("versions") > 1)["timestamp_ms"]
    )
    assert conflicting.len() == 24
    expected = last.filter(pl.col("timestamp_ms").is_in(conflicting.implode())).sort("timestamp_ms")
    got = repaired.filter(pl.col("timestamp_ms").is_in(conflicting.implode())).sort("timestamp_ms")
    assert got.select("timestamp_ms", *values).equals(expected.select("timestamp_ms", *values))


def test_repair_of_clean_data_changes_nothing() -> None:
    bars = load_bars(frame(), repair=True)
    assert bars.repair is not None
    assert not bars.repair.changed
    assert bars.frame.equals(load_bars(frame()).frame)


def test_the_bar_step_is_the_most_common_positive_step_with_or_without_a_majority() -> None:
    minute = 60_000_000_000
    # The first step taken by most bars; a gap first, then minutes; no step a majority; a week+.
    regular = pl.Series("ts", [0, minute, 2 * minute, 5 * minute, 6 * minute, 7 * minute])
    gap_first = pl.Series("ts", [0, 9 * minute, 10 * minute, 11 * minute, 12 * minute])
    mixed = pl.Series("ts", [0, minute, 3 * minute, 5 * minute, 7 * minute, 10 * minute])
    weekly = pl.Series("ts", [k * 8 * 86_400_000_000_000 for k in range(5)])
    assert bar_step_ns(regular) == minute
    assert bar_step_ns(gap_first) == minute
    assert bar_step_ns(mixed) == 2 * minute
    assert bar_step_ns(weekly) is None
