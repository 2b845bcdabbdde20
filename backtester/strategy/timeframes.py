"""Higher timeframes a strategy reads next to its bars (`Strategy.timeframes`, `ctx.bars("1h")`).

A higher-timeframe bar is known at its close (open + timeframe), like every bar: at a base bar's
close the view holds exactly the higher bars closed by then. The views are built by the engine
(resampled from the base stream, or from a series the run was given) before the first bar.
"""

from __future__ import annotations

import numpy as np
import polars as pl


class TimeframeView:
    """The bars of one higher timeframe of one instrument, and how many of them have closed by the
    close of each base bar."""

    def __init__(
        self, frame: pl.DataFrame, close_ns: np.ndarray, keep: int, closed_by_row: np.ndarray
    ) -> None:
        self.frame = frame
        self.close_ns = close_ns
        self.keep = keep
        self.closed_by_row = closed_by_row

    def closed(self, now_ns: int) -> pl.DataFrame:
        """The last `keep` bars closed at or before `now_ns` (a zero-copy slice)."""
        count = int(np.searchsorted(self.close_ns, now_ns, side="right"))
        start = max(0, count - self.keep)
        return self.frame.slice(start, count - start)

    def aligned(self, values: np.ndarray) -> np.ndarray:
        """`values` (one per higher bar) at each base row: the value of the latest higher bar closed
        by that row's close, NaN before the first."""
        latest = self.closed_by_row - 1
        out = np.full(len(latest), np.nan)
        known = latest >= 0
        out[known] = np.asarray(values, dtype=np.float64)[latest[known]]
        return out
