"""A run's fills, trades, orders and equity frames are built when first read; what the run takes
from the fills instead (their columns, for the round trips and the digest) gives the frame's own
values, and the equity it takes is the equity frame's column."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtester import Backtest
from backtester.core.digest import STRING_SEPARATOR
from backtester.metrics.trades import fill_columns
from backtester.results import RunResult, _joined_names, _joined_sides, result_digest
from backtester.strategies import SmaCross
from tests.engine_support import bars_frame

ROWS = [(100.0 + i % 7, 101.0 + i % 7, 99.0 + i % 7, 100.5 + i % 7, 10.0) for i in range(90)]


def run(mode: str) -> RunResult:
    return Backtest(bars_frame(ROWS), SmaCross, fee_rate=0.001, mode=mode).run(fast=3, slow=8)


def test_a_compiled_run_builds_its_frames_when_read_and_they_equal_the_event_paths() -> None:
    compiled, events = run("compiled"), run("signal")
    assert not isinstance(compiled._fills, pl.DataFrame)
    assert not isinstance(compiled._trades, pl.DataFrame)
    # The trades frame reads the fills' tags: the fills frame is built once, for both.
    assert compiled.trades.equals(events.trades)
    assert compiled.fills is compiled.fills
    assert compiled.fills.equals(events.fills)
    assert compiled.fills.height == compiled.stats["fills"] > 2
    assert compiled.digest == events.digest == result_digest(compiled.fills, compiled.equity)
    assert compiled.equity.equals(events.equity)


@pytest.mark.parametrize("mode", ["compiled", "signal", "dense"])
def test_the_equity_frame_is_built_when_read_with_the_columns_it_had(mode: str) -> None:
    result = run(mode)
    assert not isinstance(result._equity, pl.DataFrame)
    equity = result.equity
    assert result.equity is equity
    assert equity.columns == [
        "ts",
        "cash",
        "position_value",
        "equity",
        "drawdown_pct",
        "funding",
        "notional",
    ]
    # The columns the one pass writes, against the numpy expressions they stand for (a long-only
    # run: its notional is its position value).
    value = equity["position_value"].to_numpy()
    assert (value > 0).any()
    assert np.array_equal(equity["equity"].to_numpy(), equity["cash"].to_numpy() + value)
    peaks = np.maximum.accumulate(equity["equity"].to_numpy())
    drawdown = 100.0 * (equity["equity"].to_numpy() / peaks - 1.0)
    assert np.array_equal(equity["drawdown_pct"].to_numpy(), drawdown)
    assert np.array_equal(equity["notional"].to_numpy(), np.abs(value))
    assert result.stats["final_equity"] == equity["equity"][-1]
    assert result.stats["max_drawdown_pct"] == float(drawdown.min())
    assert result.stats["start"] == str(equity["ts"][0])
    assert result.stats["end"] == str(equity["ts"][-1])


@pytest.mark.parametrize(
    "sides",
    [
        [],
        [True],
        [False],
        [True, False, False, True, True],
        [False] * 7,
        # A buy then a sell, over and over (the repeated pair), ending on either side, and nearly.
        [True, False] * 4,
        [True, False] * 4 + [True],
        [True, False, True, True],
        [False, True, False],
    ],
)
def test_the_joined_sides_are_the_frames_side_column_joined(sides: list[bool]) -> None:
    column = pl.Series(["buy" if side else "sell" for side in sides], dtype=pl.String)
    expected = column.str.join(STRING_SEPARATOR).item()
    assert _joined_sides(np.array(sides, dtype=bool)) == expected.encode()


@pytest.mark.parametrize("names", [[], ["A"], ["A", "B", "A", "A"], ["BTC/USDT"] * 5])
def test_the_joined_names_are_the_frames_instrument_column_joined(names: list[str]) -> None:
    frame = pl.DataFrame(
        {
            "ts": pl.Series(range(len(names)), dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
            "order_id": pl.Series(range(len(names)), dtype=pl.Int64),
            "instrument": pl.Series(names, dtype=pl.String),
            "side": pl.Series(["buy"] * len(names), dtype=pl.String),
            "price": pl.Series([1.0] * len(names), dtype=pl.Float64),
            "quantity": pl.Series([1.0] * len(names), dtype=pl.Float64),
            "fee": pl.Series([0.0] * len(names), dtype=pl.Float64),
        }
    )
    columns = fill_columns(frame)
    expected = frame["instrument"].str.join(STRING_SEPARATOR).item()
    assert _joined_names(columns.symbols, columns.codes) == expected.encode()
    assert columns.tags() is None
