"""Validation runs on polars' streaming engine, in batches of rows: a broken row is still found
wherever it falls, at a batch's first row or last, and the row named is the first broken one."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

from backtester.data.bars import DataError, load_bars

ROWS = 300_007
# Around the batch sizes polars' streaming engine uses, and the ends of the frame.
POSITIONS = [1, 2, 50_000, 65_535, 65_536, 100_000, 131_071, 131_072, 262_144, ROWS - 1]


def frame() -> pl.DataFrame:
    close = np.round(100.0 + np.sin(np.arange(ROWS) / 50.0), 2)
    return pl.DataFrame(
        {
            "timestamp_ms": 1_700_000_040_000 + np.arange(ROWS, dtype=np.int64) * 60_000,
            "open": close,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": np.full(ROWS, 5.0),
        }
    )


def broken(kind: str, row: int) -> pl.DataFrame:
    data = {name: frame()[name].to_numpy().copy() for name in frame().columns}
    if kind == "duplicate timestamp":
        data["timestamp_ms"][row] = data["timestamp_ms"][row - 1]
        data["timestamp_ms"][row + 1 :] -= 60_000  # keep the rest sorted and on the grid
    elif kind == "timestamp before the previous row":
        data["timestamp_ms"][row:] -= 120_000
    elif kind == "high below max(open, close)":
        data["high"][row] = data["close"][row] - 0.5
    elif kind == "null or NaN value":
        data["volume"][row] = np.nan
    elif kind == "timestamp off the bar grid":
        data["timestamp_ms"][row] += 1_000
    return pl.DataFrame(data)


def test_a_valid_frame_of_several_batches_passes() -> None:
    assert load_bars(frame()).frame.height == ROWS


@pytest.mark.parametrize(
    "kind",
    [
        "duplicate timestamp",
        "timestamp before the previous row",
        "high below max(open, close)",
        "null or NaN value",
        "timestamp off the bar grid",
    ],
)
def test_the_first_broken_row_is_named_wherever_it_falls(kind: str) -> None:
    for row in POSITIONS:
        with pytest.raises(DataError, match=rf"row {row} .*{re.escape(kind)}"):
            load_bars(broken(kind, row))
