"""`ctx.data` in `on_bar` is the data up to the current bar only (a zero-copy slice); `on_start` gets
the whole frames."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import polars as pl
import pytest

from backtester import Backtest, Strategy
from backtester.domain.messages import Bar
from tests.engine_support import bars_frame

ROWS = [(100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, 1.0) for i in range(12)]


class NoParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class Probe(Strategy[NoParams]):
    seen: list[Any]

    def on_start(self) -> None:
        self.seen = [("start", self.ctx.data[self.ctx.primary].height)]

    def on_bar(self, bar: Bar) -> None:
        frame = self.ctx.data[self.ctx.primary]
        self.seen.append((bar.index, frame.height, frame["close"][-1] == bar.close))
        with pytest.raises(IndexError):
            frame["open"][bar.index + 1]

    def on_stop(self) -> None:
        self.seen.append(("stop", self.ctx.data[self.ctx.primary].height))


def test_on_bar_sees_the_data_up_to_the_current_bar_and_on_start_all_of_it() -> None:
    engine = Backtest(bars_frame(ROWS), Probe, mode="dense").engine()
    engine.run()
    seen = engine.strategy.seen  # type: ignore[attr-defined]
    assert seen[0] == ("start", 12)
    assert seen[1:-1] == [(i, i + 1, True) for i in range(12)]
    assert seen[-1] == ("stop", 12)


def test_the_view_is_a_slice_of_the_input_not_a_copy() -> None:
    frame = bars_frame(ROWS)
    engine = Backtest(frame, Probe, mode="dense").engine()
    engine.run()
    view = engine.ctx.data[engine.ctx.primary]
    whole = engine.ctx._frames[engine.ctx.primary]
    assert view.height == whole.height
    # Same buffers: polars slices share memory with the frame they come from.
    assert np.shares_memory(view["close"].to_numpy(), whole["close"].to_numpy())


def test_a_stream_with_no_bar_yet_shows_no_rows() -> None:
    class TwoStreams(Strategy[NoParams]):
        heights: list[tuple[str, int, int]]

        def on_start(self) -> None:
            self.heights = []

        def on_bar(self, bar: Bar) -> None:
            a, b = self.ctx.instruments
            self.heights.append((bar.instrument, self.ctx.data[a].height, self.ctx.data[b].height))

    late = pl.DataFrame(bars_frame(ROWS[:3])).with_columns(pl.col("timestamp_ms") + 5 * 60_000)
    engine = Backtest(
        {"A/USDT": bars_frame(ROWS[:3]), "B/USDT": late}, TwoStreams, mode="dense"
    ).engine()
    engine.run()
    heights = engine.strategy.heights  # type: ignore[attr-defined]
    assert heights[:3] == [("A/USDT", 1, 0), ("A/USDT", 2, 0), ("A/USDT", 3, 0)]
    assert heights[3:] == [("B/USDT", 3, 1), ("B/USDT", 3, 2), ("B/USDT", 3, 3)]
