"""Round trips: a trade runs from the fill that opens a position from flat to the fill that brings it
back to flat. Partial entries and exits inside that span belong to the same trade."""

from __future__ import annotations

import numpy as np
import polars as pl
from polars._typing import PolarsDataType

from backtester.compiled.round_trips import group_round_trips

TRADE_SCHEMA: dict[str, PolarsDataType] = {
    "instrument": pl.String,
    "entry_time": pl.Datetime("ns", "UTC"),
    "exit_time": pl.Datetime("ns", "UTC"),
    "entry_price": pl.Float64,
    "exit_price": pl.Float64,
    "quantity": pl.Float64,
    "fees": pl.Float64,
    "pnl": pl.Float64,
    "return_pct": pl.Float64,
    "duration": pl.Duration("ns"),
    "is_open": pl.Boolean,
}


def round_trips(fills: pl.DataFrame, last_close: dict[str, tuple[int, float]]) -> pl.DataFrame:
    """`fills` as in RunResult.fills; `last_close` marks still-open trades: instrument -> (ts, close)."""
    if fills.height == 0:
        return pl.DataFrame(schema=TRADE_SCHEMA)
    names = fills["instrument"].unique(maintain_order=True)
    codes = (
        np.zeros(fills.height, dtype=np.int64)
        if len(names) == 1
        else fills["instrument"]
        .replace_strict(names, range(len(names)), return_dtype=pl.Int64)
        .to_numpy()
    )
    ts = fills["ts"].dt.epoch("ns").to_numpy()
    symbol, first, last, bought, sold, cost, proceeds, fees, peak, held = group_round_trips(
        codes,
        (fills["side"] == "buy").to_numpy(),
        fills["price"].to_numpy(),
        fills["quantity"].to_numpy(),
        fills["fee"].to_numpy(),
    )
    is_open = last < 0
    symbols = names.to_list()
    mark_ts = np.array([last_close[name][0] for name in symbols], dtype=np.int64)
    mark_price = np.array([last_close[name][1] for name in symbols], dtype=np.float64)
    exit_ts = np.where(is_open, mark_ts[symbol], ts[np.maximum(last, 0)])
    # Each expression as the trade's own arithmetic would write it, in the same order.
    value_out = np.where(is_open, proceeds + held * mark_price[symbol], proceeds)
    pnl = value_out - cost - fees
    exit_quantity = np.where(is_open, sold + held, sold)
    entry_ts = ts[first]
    return pl.DataFrame(
        {
            "instrument": pl.repeat(symbols[0], len(symbol), eager=True)
            if len(symbols) == 1
            else pl.Series(symbol).replace_strict(
                range(len(symbols)), symbols, return_dtype=pl.String
            ),
            "entry_time": entry_ts,
            "exit_time": exit_ts,
            "entry_price": _ratio(cost, bought),
            "exit_price": _ratio(value_out, exit_quantity),
            "quantity": peak,
            "fees": fees,
            "pnl": pnl,
            "return_pct": _ratio(100.0 * pnl, cost),
            "duration": exit_ts - entry_ts,
            "is_open": is_open,
        },
        schema={
            **TRADE_SCHEMA,
            "entry_time": pl.Int64,
            "exit_time": pl.Int64,
            "duration": pl.Int64,
        },
    ).with_columns(
        pl.col("entry_time", "exit_time").cast(TRADE_SCHEMA["entry_time"]),
        pl.col("duration").cast(TRADE_SCHEMA["duration"]),
    )


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, and 0.0 where the denominator is 0."""
    out = np.zeros(len(numerator))
    np.divide(numerator, denominator, out=out, where=denominator != 0.0)
    return out
