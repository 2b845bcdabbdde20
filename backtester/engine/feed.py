"""Turns validated bar frames into the ordered stream of Bar events the loop publishes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, islice, repeat

import numpy as np
import polars as pl

from backtester.domain.messages import Bar

OHLCV_COLUMNS = ("ts", "open", "high", "low", "close", "volume")


class Feed:
    """Bars of every stream in (timestamp, stream, row) order, and the merged timeline."""

    def __init__(self, data: dict[str, pl.DataFrame]) -> None:
        self.symbols = list(data)
        if len(data) == 1:
            (frame,) = data.values()
            self._merged = frame.select(OHLCV_COLUMNS)
            self._streams: list[int] | None = None
            self._rows: Iterable[int] = range(frame.height)
        else:
            parts = [
                frame.select(
                    pl.lit(k, dtype=pl.Int64).alias("stream"),
                    pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
                    *OHLCV_COLUMNS,
                )
                for k, frame in enumerate(data.values())
            ]
            merged = pl.concat(parts).sort(["ts", "stream", "row"])
            self._merged = merged
            self._streams = merged["stream"].to_list()
            self._rows = merged["row"].to_list()
        self._timestamps: list[int] = self._merged["ts"].to_list()
        self._columns: tuple[np.ndarray, ...] | None = None

    def __len__(self) -> int:
        return len(self._timestamps)

    def timestamps(self) -> list[int]:
        return self._timestamps

    def timeline(self) -> np.ndarray:
        """Distinct timestamps, ascending: the points where equity is sampled."""
        ts = self._merged["ts"].to_numpy()
        if len(self.symbols) == 1:
            return ts
        return ts[np.concatenate(([True], ts[1:] != ts[:-1]))]

    def bar_at(self, row: int) -> Bar:
        """One bar of a single-stream feed, built on demand (signal mode visits few rows)."""
        columns = self._columns
        if columns is None:
            m = self._merged
            columns = self._columns = tuple(
                m[c].to_numpy() for c in ("open", "high", "low", "close", "volume")
            )
        o, h, low, c, v = columns
        return Bar(
            self.symbols[0],
            row,
            self._timestamps[row],
            o.item(row),
            h.item(row),
            low.item(row),
            c.item(row),
            v.item(row),
        )

    def scheduled_ticks(
        self, scheduled: Sequence[tuple[str, int, int, object]]
    ) -> list[tuple[int, int, object]]:
        """(merged position, tick time, event) for events due before row `row` of symbol's stream,
        ascending: the position is that bar's place in the merged stream (`len(self)` after the
        last), and the tick time the event's own, kept between its neighbours' so the clock never
        moves back."""
        placed: list[tuple[int, int, object]] = []
        positions = self._positions()
        end = len(self._timestamps)
        for symbol, row, ts, event in scheduled:
            rows = positions[self.symbols.index(symbol)]
            at = rows[row] if row < len(rows) else (rows[-1] + 1 if rows else end)
            after = self._timestamps[at] if at < end else ts
            before = self._timestamps[at - 1] if at > 0 else min(ts, after)
            placed.append((at, max(before, min(ts, after)), event))
        placed.sort(key=lambda p: p[0])
        return placed

    def _positions(self) -> list[list[int]]:
        """For each stream, the merged position of each of its rows."""
        if self._streams is None:
            return [list(range(len(self._timestamps)))]
        per_stream: list[list[int]] = [[] for _ in self.symbols]
        for position, stream in enumerate(self._streams):
            per_stream[stream].append(position)
        return per_stream

    def events(
        self, placed: Sequence[tuple[int, int, object]]
    ) -> tuple[list[int], Iterator[object]]:
        """Tick times and events of the whole run: the bars, with the placed events before theirs."""
        if not placed:
            return self._timestamps, self.bars()
        times: list[int] = []
        start = 0
        for at, tick, _ in placed:
            times.extend(self._timestamps[start:at])
            times.append(tick)
            start = at
        times.extend(self._timestamps[start:])
        return times, self._interleaved(placed)

    def _interleaved(self, placed: Sequence[tuple[int, int, object]]) -> Iterator[object]:
        """The bars with the placed events among them, chained in C: the Python below runs once
        per placed event, not once per bar."""
        bars = self.bars()

        def segments() -> Iterator[Iterable[object]]:
            start = 0
            for at, _, event in placed:
                yield islice(bars, at - start)
                yield (event,)
                start = at
            yield bars

        return chain.from_iterable(segments())

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
            self._timestamps,
            *(m[c].to_list() for c in ("open", "high", "low", "close", "volume")),
        )
