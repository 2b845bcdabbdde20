"""The one repair rule for repeated and out-of-order bars, for the catalog (downloads, imports) and for
`load_bars(..., repair=True)` alike: identical duplicate rows are dropped; of rows sharing a timestamp
with different values the last in arrival order is kept (an exchange sends the still-open candle
first, the final one later); then rows are sorted by time."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import polars as pl


class Resolved(msgspec.Struct, frozen=True):
    identical: int
    conflicting: int
    out_of_order: int


def resolve_duplicates(
    frame: pl.DataFrame, time: str, values: Sequence[str]
) -> tuple[pl.DataFrame, Resolved]:
    """`values`: the columns that make two rows identical (with `time`); any other column (a row
    number, say) is carried along with the row kept."""
    distinct = frame.unique(subset=[time, *values], keep="last", maintain_order=True)
    resolved = distinct.unique(subset=time, keep="last", maintain_order=True)
    ts = pl.col(time)
    out_of_order = int(resolved.select((ts < ts.cum_max().shift(1)).sum()).item() or 0)
    # Stable, and timestamps are unique by now: the order is the same in any process.
    ordered = resolved.sort(time, maintain_order=True) if out_of_order else resolved
    counts = Resolved(
        identical=frame.height - distinct.height,
        conflicting=distinct.height - resolved.height,
        out_of_order=out_of_order,
    )
    return ordered, counts
