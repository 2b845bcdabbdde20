"""Round trips: a trade runs from the fill that opens a position from flat to the fill that brings it
back to flat. Partial entries and exits inside that span belong to the same trade."""

from __future__ import annotations

import polars as pl
from polars._typing import PolarsDataType

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


class _Open:
    __slots__ = ("bought", "cost", "entry_ts", "fees", "held", "peak", "proceeds", "sold")

    def __init__(self, entry_ts: int) -> None:
        self.entry_ts = entry_ts
        self.held = self.bought = self.sold = self.cost = self.proceeds = self.fees = self.peak = (
            0.0
        )


def round_trips(fills: pl.DataFrame, last_close: dict[str, tuple[int, float]]) -> pl.DataFrame:
    """`fills` as in RunResult.fills; `last_close` marks still-open trades: instrument -> (ts, close)."""
    rows: list[dict[str, object]] = []
    open_trades: dict[str, _Open] = {}
    columns = zip(
        fills["instrument"].to_list(),
        fills["ts"].dt.epoch("ns").to_list(),
        fills["side"].to_list(),
        fills["price"].to_list(),
        fills["quantity"].to_list(),
        fills["fee"].to_list(),
        strict=True,
    )
    for symbol, ts, side, price, quantity, fee in columns:
        trade = open_trades.get(symbol)
        if trade is None:
            trade = open_trades[symbol] = _Open(ts)
        if side == "buy":
            trade.held += quantity
            trade.bought += quantity
            trade.cost += quantity * price
        else:
            trade.held -= quantity
            trade.sold += quantity
            trade.proceeds += quantity * price
        trade.fees += fee
        trade.peak = max(trade.peak, abs(trade.held))
        if trade.held == 0.0:
            rows.append(_row(symbol, trade, ts, trade.proceeds, is_open=False))
            del open_trades[symbol]
    for symbol, trade in open_trades.items():
        ts, close = last_close[symbol]
        rows.append(_row(symbol, trade, ts, trade.proceeds + trade.held * close, is_open=True))
    return (
        pl.DataFrame(rows, schema=TRADE_SCHEMA, orient="row")
        if rows
        else pl.DataFrame(schema=TRADE_SCHEMA)
    )


def _row(
    symbol: str, trade: _Open, exit_ts: int, value_out: float, *, is_open: bool
) -> dict[str, object]:
    pnl = value_out - trade.cost - trade.fees
    exit_quantity = trade.sold + (trade.held if is_open else 0.0)
    return {
        "instrument": symbol,
        "entry_time": trade.entry_ts,
        "exit_time": exit_ts,
        "entry_price": trade.cost / trade.bought if trade.bought else 0.0,
        "exit_price": value_out / exit_quantity if exit_quantity else 0.0,
        "quantity": trade.peak,
        "fees": trade.fees,
        "pnl": pnl,
        "return_pct": 100.0 * pnl / trade.cost if trade.cost else 0.0,
        "duration": exit_ts - trade.entry_ts,
        "is_open": is_open,
    }
