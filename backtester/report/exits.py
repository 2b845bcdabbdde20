"""The report's account of how trades ended: per exit reason (signal, stop_loss, take_profit,
trailing_stop, liquidation, end_of_data or the strategy's own tag), how many trades, how often they
won, what they returned, how long they were held and how far they went against and for the position
on the way; and a note when the risk engine denied orders, naming the rules."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import polars as pl

from backtester.report.html import format_value, grid_table
from backtester.results import denial_warning

COLUMNS = (
    ("exit_reason", "exit reason"),
    ("trades", "trades"),
    ("win_rate_pct", "win rate %"),
    ("avg_return_pct", "avg return %"),
    ("pnl", "P&L"),
    ("avg_bars_held", "avg bars held"),
    ("avg_mae_pct", "avg MAE %"),
    ("avg_mfe_pct", "avg MFE %"),
)


def exit_summary(trades: pl.DataFrame) -> pl.DataFrame | None:
    """One row per exit reason, the most frequent first; None for trades recorded before trades had
    exit reasons (an older run directory)."""
    if "exit_reason" not in trades.columns:
        return None
    return (
        trades.group_by("exit_reason")
        .agg(
            pl.len().alias("trades"),
            ((pl.col("pnl") > 0.0).mean() * 100.0).alias("win_rate_pct"),
            pl.col("return_pct").mean().alias("avg_return_pct"),
            pl.col("pnl").sum().alias("pnl"),
            pl.col("bars_held").mean().alias("avg_bars_held"),
            pl.col("mae_pct").mean().alias("avg_mae_pct"),
            pl.col("mfe_pct").mean().alias("avg_mfe_pct"),
        )
        .sort(["trades", "exit_reason"], descending=[True, False])
        .select([name for name, _ in COLUMNS])
    )


def exits_table(trades: pl.DataFrame) -> str | None:
    summary = exit_summary(trades)
    if summary is None or summary.is_empty():
        return None
    rows = [
        [html.escape(format_value(row[name])) for name, _ in COLUMNS]
        for row in summary.iter_rows(named=True)
    ]
    return grid_table([title for _, title in COLUMNS], rows)


def denial_note(stats: Mapping[str, Any]) -> str | None:
    """The warning the notebook repr and the CLI give when the risk engine denied orders."""
    warning = denial_warning(stats)
    return None if warning is None else f"{warning}: see the reason column of the orders."
