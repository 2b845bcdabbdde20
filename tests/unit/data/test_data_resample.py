from pathlib import Path

import polars as pl
import pytest

from backtester.data.errors import DataError
from backtester.data.resample import resample
from backtester.data.timeframes import RESAMPLE_TARGETS, timeframe_ms

DATA = Path(__file__).resolve().parents[2] / "data"
MINUTE = 60_000


def sum_in_time_order(values: pl.Series) -> float:
    total = 0.0
    for value in values:
        total += value
    return total


@pytest.fixture(scope="module")
def minutes() -> pl.DataFrame:
    raw = pl.read_csv(DATA / "binance_BTC-USDT_1m.csv")
    return raw.unique("timestamp_ms", keep="last", maintain_order=True).sort("timestamp_ms")


@pytest.mark.parametrize("target", RESAMPLE_TARGETS)
def test_each_bar_aggregates_exactly_its_own_source_bars(
    minutes: pl.DataFrame, target: str
) -> None:
    step = timeframe_ms(target)
    out = resample(minutes, MINUTE, step)
    assert (out["timestamp_ms"] % step == 0).all()
    for bar in out.gather([0, out.height // 2, out.height - 1]).iter_rows(named=True):
        start = bar["timestamp_ms"]
        inside = minutes.filter(pl.col("timestamp_ms").is_between(start, start + step - 1))
        assert inside.height == step // MINUTE
        assert bar == {
            "timestamp_ms": start,
            "open": inside["open"][0],
            "high": inside["high"].max(),
            "low": inside["low"].min(),
            "close": inside["close"][-1],
            "volume": sum_in_time_order(inside["volume"]),
        }


def test_buckets_cut_by_the_data_edges_are_dropped(minutes: pl.DataFrame) -> None:
    cut = minutes.slice(3, 55)  # 00:03 .. 00:57
    out = resample(cut, MINUTE, 5 * MINUTE)
    first = minutes["timestamp_ms"][0]
    assert out["timestamp_ms"].to_list() == [first + k * 5 * MINUTE for k in range(1, 11)]


def test_no_look_ahead_a_bar_never_changes_when_later_data_arrives(
    minutes: pl.DataFrame,
) -> None:
    step = 15 * MINUTE
    full = resample(minutes, MINUTE, step)
    for rows in (1_000, 1_007, 5_013):
        known = resample(minutes.head(rows), MINUTE, step)
        last_known = minutes["timestamp_ms"][rows - 1]
        assert (known["timestamp_ms"] + step <= last_known + MINUTE).all()
        assert known.equals(full.head(known.height))


def test_a_gap_inside_a_bucket_keeps_the_bucket_from_the_bars_present(
    minutes: pl.DataFrame,
) -> None:
    holed = minutes.head(60).filter(pl.col("timestamp_ms") != minutes["timestamp_ms"][7])
    out = resample(holed, MINUTE, 5 * MINUTE)
    assert out.height == 12
    start = out["timestamp_ms"][1]
    second = holed.filter(pl.col("timestamp_ms").is_between(start, start + 4 * MINUTE))
    assert second.height == 4
    assert out["volume"][1] == sum_in_time_order(second["volume"])


def test_only_multiples_of_the_source_timeframe() -> None:
    frame = pl.DataFrame({"timestamp_ms": [0], "close": [1.0]})
    with pytest.raises(DataError, match="not a multiple"):
        resample(frame, 5 * MINUTE, 7 * MINUTE)
