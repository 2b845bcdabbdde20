"""Turns validated bar frames into the ordered stream of Bar events the loop publishes.

A bar becomes known at its close: its open time plus its stream's bar interval (the most common
step between its timestamps). The feed delivers bars in the order they become known, a stream's
bars of equal close time finer first (the last 1m bar of an hour before that hour's 1h bar), then
by stream and row; the clock runs on those close times (adr/0020). For one stream, or streams of
one interval, that is the order of open times it always was.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, islice, repeat
from operator import itemgetter

import numpy as np
import polars as pl

from backtester.domain.messages import Bar
from backtester.metrics.stats import bar_interval_ns

OHLCV_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
# Rows per block of bars built at once (see `Feed.bars`).
BLOCK_ROWS = 4096


class Feed:
    """Bars of every stream in (close time, open time descending, stream, row) order, the merged
    timeline of open times, and when each point of it is known."""

    def __init__(self, data: dict[str, pl.DataFrame]) -> None:
        self.symbols = list(data)
        intervals = [bar_interval_ns(frame["ts"].to_numpy()) for frame in data.values()]
        if len(data) == 1:
            (frame,) = data.values()
            self._merged = frame.select(
                *OHLCV_COLUMNS, (pl.col("ts") + intervals[0]).alias("ts_close")
            )
            self._streams: list[int] | None = None
            self._rows: list[int] | None = None  # a single stream's rows are its positions
        else:
            parts = [
                frame.select(
                    pl.lit(k, dtype=pl.Int64).alias("stream"),
                    pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
                    *OHLCV_COLUMNS,
                    (pl.col("ts") + interval).alias("ts_close"),
                )
                for k, (frame, interval) in enumerate(zip(data.values(), intervals, strict=True))
            ]
            merged = pl.concat(parts).sort(
                ["ts_close", "ts", "stream", "row"], descending=[False, True, False, False]
            )
            self._merged = merged
            self._streams = merged["stream"].to_list()
            self._rows = merged["row"].to_list()
        # The clock's times as one list, made when first asked for: a dense run takes them a
        # block at a time with its bars (`ticks`), and never holds them all as Python ints.
        self._times: list[int] | None = None
        # Signal mode's bars, built on demand (`bar_maker`).
        self._maker: Callable[[int], Bar] | None = None

    def __len__(self) -> int:
        return self._merged.height

    @property
    def _timestamps(self) -> list[int]:
        times = self._times
        if times is None:
            times = self._times = self._merged["ts_close"].to_list()
        return times

    def timestamps(self) -> list[int]:
        """When each bar becomes known (its close), in delivery order: the clock's times."""
        return self._timestamps

    def time_at(self) -> Callable[[int], int]:
        """`timestamps()[row]` without the list: signal mode reads a few rows' times, and making
        a year of them Python ints costs more than its visits."""
        return self._closes().item

    def _closes(self) -> np.ndarray:
        closes: np.ndarray = self._merged["ts_close"].to_numpy()
        return closes

    def timeline(self) -> np.ndarray:
        """Distinct bar open times, ascending: the points where equity is sampled."""
        ts = self._merged["ts"].to_numpy()
        if len(self.symbols) == 1:
            return ts
        return np.unique(ts)

    def sample_times(self) -> np.ndarray:
        """For each timeline point, when its state is known: the earliest close of the bars that
        open then (after those bars' fills)."""
        if len(self.symbols) == 1:
            return self._merged["ts_close"].to_numpy()
        earliest = self._merged.group_by("ts").agg(pl.col("ts_close").min()).sort("ts")["ts_close"]
        return earliest.to_numpy()

    def bar_at(self, row: int) -> Bar:
        """One bar of a single-stream feed, built on demand (signal mode visits few rows)."""
        return self.bar_maker()(row)

    def bar_maker(self) -> Callable[[int], Bar]:
        """`bar_at` as a function holding what it reads: signal mode calls it for every row it
        visits. Each value is read from its own column (no copy of the columns is made: stacking
        them cost more than a year of visits)."""
        maker = self._maker
        if maker is None:
            m = self._merged
            symbol = self.symbols[0]
            ts = m["ts"].to_numpy().item
            o, h, low, c, v = (
                m[name].to_numpy().astype(np.float64, copy=False).item for name in OHLCV_COLUMNS[1:]
            )
            closes = self._closes().item

            def maker(row: int) -> Bar:
                return Bar(
                    symbol, row, ts(row), o(row), h(row), low(row), c(row), v(row), closes(row)
                )

            self._maker = maker
        return maker

    def scheduled_ticks(
        self, scheduled: Sequence[tuple[str, int, int, object]]
    ) -> list[tuple[int, int, object]]:
        """(merged position, tick time, event) for scheduled events (symbol, row, time, event),
        ascending: each at its own time, after every bar that closes by then and before the first
        that closes later (`len(self)`: after the last) — for its own stream, just before its row
        `row`. The clock never moves back: the bars around it close before and after it."""
        placed = [(bisect_right(self._timestamps, ts), ts, event) for _, _, ts, event in scheduled]
        placed.sort(key=lambda p: p[0])
        return placed

    def ticks(self, placed: Sequence[tuple[int, int, object]] = ()) -> Iterator[tuple[int, object]]:
        """(tick time, event) of the whole run: each bar at its close, with the placed events
        before theirs, chained in C: the Python below runs once per block and placed event, not
        once per bar."""
        bars = self._ticks()
        if not placed:
            return bars

        def segments() -> Iterator[Iterable[tuple[int, object]]]:
            start = 0
            for at, tick, event in placed:
                yield islice(bars, at - start)
                yield ((tick, event),)
                start = at
            yield bars

        return chain.from_iterable(segments())

    def bars(self) -> Iterator[Bar]:
        """Every bar in delivery order."""
        return map(itemgetter(1), self._ticks())

    def _ticks(self) -> Iterator[tuple[int, Bar]]:
        """Every bar in delivery order with its close, built a block of rows at a time: the
        numbers of a block are made, delivered and freed while they are in cache, and the columns
        of the whole series are never held as Python objects at once (which costs more than the
        bars themselves). A bar's close is its tick time: one int serves both."""
        m = self._merged
        columns = [m[c].to_numpy() for c in OHLCV_COLUMNS]
        closes = m["ts_close"].to_numpy()
        rows = self._rows
        names = self.symbols
        streams = self._streams
        single = repeat(names[0])
        count = m.height

        def block(start: int) -> Iterator[tuple[int, Bar]]:
            end = min(start + BLOCK_ROWS, count)
            symbols: Iterable[str]
            positions: Iterable[int]
            if streams is None or rows is None:
                symbols, positions = single, range(start, end)
            else:
                symbols = [names[k] for k in streams[start:end]]
                positions = rows[start:end]
            times = closes[start:end].tolist()
            bars = map(
                Bar, symbols, positions, *(column[start:end].tolist() for column in columns), times
            )
            return zip(times, bars, strict=True)

        return chain.from_iterable(map(block, range(0, count, BLOCK_ROWS)))
