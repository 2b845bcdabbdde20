import pytest

from backtester.data.errors import DataError
from backtester.data.timeframes import ceil_to, floor_to, format_ms, parse_utc_ms, timeframe_ms


@pytest.mark.parametrize(
    ("text", "ms"),
    [("1s", 1_000), ("1m", 60_000), ("15m", 900_000), ("4h", 14_400_000), ("1d", 86_400_000)],
)
def test_timeframe_ms_of_fixed_length_timeframes(text: str, ms: int) -> None:
    assert timeframe_ms(text) == ms


@pytest.mark.parametrize("text", ["1w", "1M", "0m", "m", "1.5h", ""])
def test_timeframe_without_a_fixed_epoch_grid_is_rejected(text: str) -> None:
    with pytest.raises(DataError, match="not supported"):
        timeframe_ms(text)


def test_parse_utc_ms_reads_dates_datetimes_offsets_and_epoch_ms() -> None:
    assert parse_utc_ms("2024-03-01") == 1_709_251_200_000
    assert parse_utc_ms("2024-03-01T00:01") == 1_709_251_260_000
    assert parse_utc_ms("2024-03-01 01:00+01:00") == 1_709_251_200_000
    assert parse_utc_ms("2024-03-01T00:00:00Z") == 1_709_251_200_000
    assert parse_utc_ms("1709251200000") == 1_709_251_200_000


def test_parse_utc_ms_names_the_bad_input() -> None:
    with pytest.raises(DataError, match="'yesterday'"):
        parse_utc_ms("yesterday")


def test_format_and_grid_rounding() -> None:
    assert format_ms(1_709_251_200_000) == "2024-03-01 00:00"
    assert format_ms(1_637_193_600_017) == "2021-11-18 00:00:00.017"
    assert floor_to(1_709_251_259_999, 60_000) == 1_709_251_200_000
    assert ceil_to(1_709_251_200_001, 60_000) == 1_709_251_260_000
    assert ceil_to(1_709_251_200_000, 60_000) == 1_709_251_200_000
