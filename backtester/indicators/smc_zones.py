"""Smart Money Concepts as tables, one row per swing, gap, block or break, with the rows where each
formed and (for zones) where it was later mitigated: for charts and analysis after a run.

The `mitigated` column looks forward from the zone's formation, so these tables are not for use
inside a strategy at bar t; the per-bar arrays of `backtester.indicators.smc` are.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from backtester.indicators._inputs import Column, as_columns, period
from backtester.indicators.smc import _gaps, _mitigation, _structure, swings

__all__ = ["fvg_zones", "order_block_zones", "structure_breaks", "swing_points"]


def swing_points(high: Column, low: Column, swing_length: int = 5) -> pl.DataFrame:
    """pivot (row), confirmed (row: pivot + swing_length), kind ("high" / "low"), level."""
    n = period("swing_length", swing_length, minimum=1)
    found = swings(high, low, n)
    parts = []
    for kind, levels in (("high", found.high), ("low", found.low)):
        rows = np.flatnonzero(~np.isnan(levels))
        parts.append(
            pl.DataFrame(
                {
                    "pivot": rows - n,
                    "confirmed": rows,
                    "kind": [kind] * len(rows),
                    "level": levels[rows],
                },
                schema={
                    "pivot": pl.Int64,
                    "confirmed": pl.Int64,
                    "kind": pl.String,
                    "level": pl.Float64,
                },
            )
        )
    return pl.concat(parts).sort(["confirmed", "kind"])


def fvg_zones(open: Column, high: Column, low: Column, close: Column) -> pl.DataFrame:
    """formed (row of the gap's third bar), start (its first bar), direction, top, bottom, mitigated
    (row, or null)."""
    o, h, low_, c = as_columns(open=open, high=high, low=low, close=close)
    gaps = _gaps(o, h, low_, c)
    mitigated = np.full(len(gaps.rows), -1, dtype=np.int64)
    bull, bear = gaps.direction > 0, gaps.direction < 0
    mitigated[bull] = _mitigation(
        gaps.rows[bull], gaps.top[bull], low_, falling=True, inclusive=True
    ).mitigated_at
    mitigated[bear] = _mitigation(
        gaps.rows[bear], gaps.bottom[bear], h, falling=False, inclusive=True
    ).mitigated_at
    return _zones(gaps.rows, gaps.rows - 2, gaps.direction, gaps.top, gaps.bottom, mitigated)


def order_block_zones(
    open: Column,
    high: Column,
    low: Column,
    close: Column,
    swing_length: int = 5,
    close_mitigation: bool = False,
) -> pl.DataFrame:
    """formed (row of the break), block (row of the candle), direction, top, bottom, mitigated."""
    o, h, low_, c = as_columns(open=open, high=high, low=low, close=close)
    _, (block, top, bottom, block_at) = _structure(h, low_, c, swing_length, True)
    rows = np.flatnonzero(block)
    direction = block[rows]
    mitigated = np.full(len(rows), -1, dtype=np.int64)
    bull, bear = direction > 0, direction < 0
    falling_price = np.minimum(o, c) if close_mitigation else low_
    rising_price = np.maximum(o, c) if close_mitigation else h
    mitigated[bull] = _mitigation(
        rows[bull], bottom[rows][bull], falling_price, falling=True, inclusive=False
    ).mitigated_at
    mitigated[bear] = _mitigation(
        rows[bear], top[rows][bear], rising_price, falling=False, inclusive=False
    ).mitigated_at
    return _zones(
        rows, block_at[rows].astype(np.int64), direction, top[rows], bottom[rows], mitigated
    ).rename({"start": "block"})


def structure_breaks(
    high: Column, low: Column, close: Column, swing_length: int = 5, close_break: bool = True
) -> pl.DataFrame:
    """row (the breaking bar), kind ("bos" / "choch"), direction, level, swing (the pivot's row)."""
    found, _ = _structure(high, low, close, swing_length, close_break)
    rows = np.flatnonzero((found.bos != 0) | (found.choch != 0))
    is_bos = found.bos[rows] != 0
    return pl.DataFrame(
        {
            "row": rows,
            "kind": np.where(is_bos, "bos", "choch").tolist(),
            "direction": np.where(is_bos, found.bos[rows], found.choch[rows]),
            "level": found.level[rows],
            "swing": found.swing_at[rows].astype(np.int64),
        },
        schema={
            "row": pl.Int64,
            "kind": pl.String,
            "direction": pl.Float64,
            "level": pl.Float64,
            "swing": pl.Int64,
        },
    )


def _zones(
    formed: np.ndarray,
    start: np.ndarray,
    direction: np.ndarray,
    top: np.ndarray,
    bottom: np.ndarray,
    mitigated: np.ndarray,
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "formed": formed,
            "start": start,
            "direction": direction,
            "top": top,
            "bottom": bottom,
            "mitigated": mitigated,
        },
        schema={
            "formed": pl.Int64,
            "start": pl.Int64,
            "direction": pl.Float64,
            "top": pl.Float64,
            "bottom": pl.Float64,
            "mitigated": pl.Int64,
        },
    ).with_columns(pl.when(pl.col("mitigated") >= 0).then(pl.col("mitigated")).alias("mitigated"))
