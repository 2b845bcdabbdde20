"""Each anomaly class of the validation policy, on real data where it occurs and hand-built bars
where it does not (no real file in tests/data has out-of-order, invalid or off-grid rows)."""

from pathlib import Path

import polars as pl
import pytest

from backtester.data.errors import DataError
from backtester.data.validation import ValidationReport, clean, describe

DATA = Path(__file__).resolve().parents[2] / "data"
MINUTE = 60_000
T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC


def bars(rows: list[tuple[int, float, float, float, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema=["timestamp_ms", "open", "high", "low", "close", "volume"],
        orient="row",
    )


def calm(n: int, start: int = T0) -> list[tuple[int, float, float, float, float, float]]:
    return [(start + i * MINUTE, 100.0, 101.0, 99.0, 100.5, 3.0) for i in range(n)]


def run(
    frame: pl.DataFrame, *, spike_threshold: float = 0.15, drop_invalid: bool = False
) -> tuple[pl.DataFrame, ValidationReport]:
    return clean(
        frame,
        kind="ohlcv",
        timeframe_ms=MINUTE,
        source="test",
        spike_threshold=spike_threshold,
        drop_invalid=drop_invalid,
    )


def test_real_binance_duplicates_identical_dropped_and_conflicting_keep_final_candle() -> None:
    raw = pl.read_csv(DATA / "binance_BTC-USDT_1m.csv")
    out, report = run(raw)
    assert (report.rows_in, report.rows_out) == (30_954, 30_900)
    assert report.identical_duplicates == 30
    assert report.conflicting_duplicates == 24
    assert report.gaps == ()
    # The partial candle comes first in the file and has the smaller volume: the final one wins.
    clash = 1_711_104_660_000  # 2024-03-22 10:51, one of the conflicting timestamps
    versions = raw.filter(pl.col("timestamp_ms") == clash)
    assert versions.height == 2
    kept = out.filter(pl.col("timestamp_ms") == clash)
    assert kept.row(0) == versions.row(1)
    assert versions["volume"][0] < versions["volume"][1]


def test_real_freqtrade_gaps_are_reported_with_ranges_and_not_filled() -> None:
    raw = pl.read_csv(DATA / "freqtrade_UNITTEST-BTC_1m.csv")
    out, report = run(raw)
    assert out.height == raw.height == 13_681
    assert len(report.gaps) == 538
    assert report.missing_bars == 717
    largest = max(report.gaps, key=lambda g: g.missing)
    assert largest.missing == 7
    assert largest.end_ms - largest.start_ms == 7 * MINUTE
    assert not out.filter(pl.col("timestamp_ms") == largest.start_ms).height


def test_out_of_order_rows_are_counted_and_sorted() -> None:
    rows = calm(5)
    shuffled = [rows[0], rows[3], rows[1], rows[2], rows[4]]
    out, report = run(bars(shuffled))
    assert report.out_of_order == 2
    assert out["timestamp_ms"].to_list() == [r[0] for r in rows]


@pytest.mark.parametrize(
    ("bad_row", "problem"),
    [
        ((T0 + 2 * MINUTE, 100.0, 98.0, 99.0, 98.5, 1.0), "high below low"),
        ((T0 + 2 * MINUTE, 100.0, 100.2, 99.0, 100.5, 1.0), "high below max(open, close)"),
        ((T0 + 2 * MINUTE, 100.0, 101.0, 99.9, 99.5, 1.0), "low above min(open, close)"),
        ((T0 + 2 * MINUTE, 0.0, 101.0, 0.0, 100.0, 1.0), "non-positive price"),
        ((T0 + 2 * MINUTE, 100.0, 101.0, 99.0, 100.0, -1.0), "negative volume"),
        ((T0 + 2 * MINUTE, 100.0, float("nan"), 99.0, 100.0, 1.0), "null or NaN value"),
        ((T0 + 2 * MINUTE + 30_000, 100.0, 101.0, 99.0, 100.0, 1.0), "off the timeframe grid"),
    ],
)
def test_invalid_row_stops_the_write_naming_row_and_rule(
    bad_row: tuple[int, float, float, float, float, float], problem: str
) -> None:
    rows = calm(4)
    rows[2] = bad_row
    with pytest.raises(DataError) as caught:
        run(bars(rows))
    message = str(caught.value)
    assert message.startswith("test: row 2: ")
    assert problem in message


def test_null_value_is_invalid() -> None:
    frame = bars(calm(3)).with_columns(
        volume=pl.when(pl.col("timestamp_ms") == T0 + MINUTE).then(None).otherwise(pl.col("volume"))
    )
    with pytest.raises(DataError, match="row 1: null or NaN value"):
        run(frame)


def test_drop_invalid_removes_and_reports_every_bad_row() -> None:
    rows = calm(6)
    rows[1] = (rows[1][0], 100.0, 98.0, 99.0, 98.5, 1.0)
    rows[4] = (rows[4][0], 100.0, 101.0, 99.0, 100.0, -2.0)
    out, report = run(bars(rows), drop_invalid=True)
    assert out.height == 4
    assert report.invalid_rows == 2
    # A high below the low necessarily breaks the open/close bounds too; each rule is counted.
    assert report.problem_counts == {
        "high below low": 1,
        "high below max(open, close)": 1,
        "low above min(open, close)": 1,
        "negative volume": 1,
    }
    assert [p.row for p in report.problems] == [1, 4]
    # The dropped bars leave gaps, which are reported like any other.
    assert [g.start_ms for g in report.gaps] == [rows[1][0], rows[4][0]]


def test_single_bar_spike_beyond_threshold_is_reported_and_kept() -> None:
    rows = calm(5)
    rows[2] = (rows[2][0], 100.0, 160.0, 99.0, 100.2, 3.0)  # a wick 59% above the previous close
    rows[3] = (rows[3][0], 100.0, 101.0, 40.0, 100.1, 3.0)  # and one 60% below
    out, report = run(bars(rows), spike_threshold=0.2)
    assert out.height == 5
    assert [(s.timestamp_ms, s.side) for s in report.spikes] == [
        (rows[2][0], "high"),
        (rows[3][0], "low"),
    ]
    assert report.spikes[0].move == pytest.approx(160.0 / 100.5 - 1, abs=1e-6)
    _, lenient = run(bars(rows), spike_threshold=0.7)
    assert lenient.spikes == ()


def test_a_move_that_persists_is_not_a_spike() -> None:
    rows = calm(3) + [(T0 + i * MINUTE, 150.0, 151.0, 149.0, 150.5, 3.0) for i in range(3, 6)]
    _, report = run(bars(rows), spike_threshold=0.2)
    assert report.spikes == ()


def test_funding_series_checks_duplicates_and_interval_gaps_but_not_the_grid() -> None:
    raw = pl.read_csv(DATA / "freqtrade_XRP-USDT-USDT_8h_funding_rate.csv")
    eight_hours = 8 * 3_600_000
    out, report = clean(raw, kind="funding", timeframe_ms=eight_hours, source="funding")
    assert out.height == 91
    assert report.gaps == ()
    holed = pl.concat([raw.head(10), raw.slice(12)])
    _, holed_report = clean(holed, kind="funding", timeframe_ms=eight_hours, source="funding")
    assert [g.missing for g in holed_report.gaps] == [2]


def test_describe_lists_problems_gaps_and_spikes() -> None:
    raw = pl.read_csv(DATA / "freqtrade_UNITTEST-BTC_1m.csv")
    _, report = run(raw)
    lines = describe(report, limit=2)
    assert lines[0] == "test: 13681 rows, 538 gaps (717 missing bars), 0 spikes"
    assert lines[1] == "  gap [2017-11-04 23:08, 2017-11-04 23:14): 6 missing"
    assert lines[-1] == "  ... 536 more gaps"
