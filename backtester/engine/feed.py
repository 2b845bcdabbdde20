"""Turns validated bar frames into the ordered stream of Bar events the loop publishes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import repeat

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
