"""Round trips: a trade runs from the fill that opens a position from flat to the fill that brings it
back to flat, long or short. Partial entries and exits inside that span belong to the same trade; a
fill that crosses zero ends one trade and starts the next; funding paid while a trade is open is its
own."""

from __future__ import annotations

import numpy as np
import polars as pl
from polars._typing import PolarsDataType

from backtester.compiled.round_trips import group_round_trips

LIQUIDATION_TAG = "liquidation"

TRADE_SCHEMA: dict[str, PolarsDataType] = {
    "instrument": pl.String,
    "side": pl.String,
    "entry_time": pl.Datetime("ns", "UTC"),
    "exit_time": pl.Datetime("ns", "UTC"),
    "entry_price": pl.Float64,
    "exit_price": pl.Float64,
    "quantity": pl.Float64,
    "fees": pl.Float64,
    "funding": pl.Float64,
    "pnl": pl.Float64,
    "return_pct": pl.Float64,
    "duration": pl.Duration("ns"),
    "is_open": pl.Boolean,
    "liquidated": pl.Boolean,
}

# A run's funding payments, as `RunResult.funding` holds them; `fills_before` counts the fills booked
# before each payment, which places it among them.
FUNDING_SCHEMA: dict[str, PolarsDataType] = {
    "ts": pl.Datetime("ns", "UTC"),
    "instrument": pl.String,
    "rate": pl.Float64,
    "mark_price": pl.Float64,
    "quantity": pl.Float64,
    "amount": pl.Float64,
    "fills_before": pl.Int64,
}


def round_trips(
    fills: pl.DataFrame,
    last_mark: dict[str, tuple[int, float]],
    multipliers: dict[str, float] | None = None,
    funding: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """`fills` as in RunResult.fills; `last_mark` marks still-open trades: instrument -> (ts, mark);
    `multipliers`: contract sizes (default 1); `funding` as in RunResult.funding."""
    if fills.height == 0:
        return pl.DataFrame(schema=TRADE_SCHEMA)
    names = fills["instrument"].unique(maintain_order=True)
    symbols = names.to_list()
    codes = (
        np.zeros(fills.height, dtype=np.int64)
        if len(names) == 1
        else fills["instrument"]
        .replace_strict(names, range(len(names)), return_dtype=pl.Int64)
        .to_numpy()
    )
    sizes = np.array([(multipliers or {}).get(name, 1.0) for name in symbols], dtype=np.float64)
    paid = funding.filter(pl.col("instrument").is_in(symbols)) if funding is not None else None
    if paid is None or paid.height == 0:
        funding_codes = np.zeros(0, np.int64)
        amounts = np.zeros(0)
        after = np.zeros(0, np.int64)
    else:
        funding_codes = (
            paid["instrument"]
            .replace_strict(names, range(len(names)), return_dtype=pl.Int64)
            .to_numpy()
        )
        amounts = paid["amount"].to_numpy()
        after = paid["fills_before"].to_numpy()
    ts = fills["ts"].dt.epoch("ns").to_numpy()
    (
        symbol,
        side,
        first,
        last,
        entered,
        exited,
        entry_value,
        exit_value,
        fees,
        peak,
        funded,
        held,
    ) = group_round_trips(
        codes,
        (fills["side"] == "buy").to_numpy(),
        fills["price"].to_numpy(),
        fills["quantity"].to_numpy(),
        fills["fee"].to_numpy(),
        sizes,
        funding_codes,
        amounts,
        after,
    )
    is_open = last < 0
    mark_ts = np.array([last_mark[name][0] for name in symbols], dtype=np.int64)
    mark_price = np.array([last_mark[name][1] for name in symbols], dtype=np.float64)
    exit_ts = np.where(is_open, mark_ts[symbol], ts[np.maximum(last, 0)])
    # Each expression as the trade's own arithmetic would write it, in the same order.
    value_out = np.where(
        is_open, exit_value + np.abs(held) * mark_price[symbol] * sizes[symbol], exit_value
    )
    long = side > 0
    pnl = np.where(long, value_out - entry_value, entry_value - value_out) - fees - funded
    exit_quantity = np.where(is_open, exited + np.abs(held), exited)
    entry_ts = ts[first]
    tags = fills["tag"].to_numpy() if "tag" in fills.columns else None
    liquidated = (
        np.zeros(len(symbol), dtype=bool)
        if tags is None
        else ~is_open & (tags[np.maximum(last, 0)] == LIQUIDATION_TAG)
    )
    return pl.DataFrame(
        {
            "instrument": pl.repeat(symbols[0], len(symbol), eager=True)
            if len(symbols) == 1
            else pl.Series(symbol).replace_strict(
                range(len(symbols)), symbols, return_dtype=pl.String
            ),
            "side": np.where(long, "long", "short"),
            "entry_time": entry_ts,
            "exit_time": exit_ts,
            "entry_price": _ratio(entry_value, entered * sizes[symbol]),
            "exit_price": _ratio(value_out, exit_quantity * sizes[symbol]),
            "quantity": peak,
            "fees": fees,
            "funding": funded,
            "pnl": pnl,
            "return_pct": _ratio(100.0 * pnl, entry_value),
            "duration": exit_ts - entry_ts,
            "is_open": is_open,
            "liquidated": liquidated,
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
