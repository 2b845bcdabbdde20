"""Turns validated bar frames into the ordered stream of Bar events the loop publishes.

A bar becomes known at its close: its open time plus its stream's bar interval (the most common
step between its timestamps). The feed delivers bars in the order they become known, a stream's
bars of equal close time finer first (the last 1m bar of an hour before that hour's 1h bar), then
by stream and row; the clock runs on those close times (adr/0017). For one stream, or streams of
one interval, that is the order of open times it always was.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import repeat

import numpy as np
import polars as pl

from backtester.domain.messages import Bar
from backtester.metrics.stats import bar_interval_ns

OHLCV_COLUMNS = ("ts", "open", "high", "low", "close", "volume")


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
            self._rows: Iterable[int] = range(frame.height)
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
        self._timestamps: list[int] = self._merged["ts_close"].to_list()
        self._columns: tuple[np.ndarray, ...] | None = None

    def __len__(self) -> int:
        return len(self._timestamps)

    def timestamps(self) -> list[int]:
        """When each bar becomes known (its close), in delivery order: the clock's times."""
        return self._timestamps

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
        columns = self._columns
        if columns is None:
            m = self._merged
            columns = self._columns = tuple(
                m[c].to_numpy() for c in ("ts", "open", "high", "low", "close", "volume")
            )
        ts, o, h, low, c, v = columns
        return Bar(
            self.symbols[0],
            row,
            ts.item(row),
            o.item(row),
            h.item(row),
            low.item(row),
            c.item(row),
            v.item(row),
            self._timestamps[row],
        )

    def bars(self) -> Iterator[Bar]:
        m = self._merged
        symbols: Iterable[str]
        if self._streams is None:
            symbols = repeat(self.symbols[0])
        else:
            names = self.symbols
            symbols = (names[k] for k in self._streams)
        return map(
            Bar,
            symbols,
            self._rows,
            *(m[c].to_list() for c in OHLCV_COLUMNS),
            self._timestamps,
        )
