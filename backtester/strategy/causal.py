"""`ctx.data`: the input frames as a strategy may see them at the moment it reads them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import polars as pl

from backtester.domain.messages import Bar


class CausalFrames(Mapping[str, pl.DataFrame]):
    """Before the first bar (in `on_start`) each instrument's whole frame, for vectorized
    indicators (the look-ahead check proves them causal); from the first bar on, each frame up to
    and including the latest bar seen of its instrument (none yet: no rows). A read past it is an
    IndexError, not a look at the future. The frame is sliced when read: zero-copy, and nothing is
    done on a bar the strategy does not read it."""

    def __init__(self, frames: dict[str, pl.DataFrame], last_bar: dict[str, Bar]) -> None:
        self._frames = frames
        self._last_bar = last_bar

    def __getitem__(self, symbol: str) -> pl.DataFrame:
        frame = self._frames[symbol]
        if not self._last_bar:
            return frame
        bar = self._last_bar.get(symbol)
        return frame.head(0 if bar is None else bar.index + 1)

    def __iter__(self) -> Iterator[str]:
        return iter(self._frames)

    def __len__(self) -> int:
        return len(self._frames)
