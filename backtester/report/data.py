"""What a report shows, computed from a run's own frames with polars: no plotting here, so every number
a chart draws can be checked against the run without a browser."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
STOP_TYPES = ("stop", "stop_limit")


@dataclass(frozen=True)
class RunData:
    """One run as the report reads it. `bars` maps symbol -> canonical bars (`ts` int64 ns, OHLCV);
    a symbol is absent when its data could not be loaded, and `notes` says why."""

    title: str
    stats: Mapping[str, Any]
    trades: pl.DataFrame
    fills: pl.DataFrame
    orders: pl.DataFrame
    equity: pl.DataFrame
    bars: dict[str, pl.DataFrame] = field(default_factory=dict)
    manifest: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = ()
    # What a result that never went through a run directory knows of itself (strategy, params, seed).
    about: Mapping[str, Any] = field(default_factory=dict)
    # Indicator overlays on the price charts: name -> parameters (`report.overlays`).
    overlays: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def epoch_ms(column: pl.Series) -> np.ndarray:
    """Datetimes (or int64 ns) as float milliseconds since the epoch, the unit browsers plot time in."""
    ns = column.dt.epoch("ns") if isinstance(column.dtype, pl.Datetime) else column
    return ns.to_numpy().astype(np.float64) / 1e6


def fill_markers(fills: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    """One row per fill, marked `entry` when it grows the position's size and `exit` when it shrinks
    it, with its order's type and tag for the tooltip."""
    signed = (
        pl.when(pl.col("side") == "buy").then(pl.col("quantity")).otherwise(-pl.col("quantity"))
    )
    after = signed.cum_sum().over("instrument")
    tags = typed_orders(orders).select("order_id", pl.col("type").alias("order_type"), "tag")
    return (
        fills.drop("tag", strict=False)
        .with_columns(
            pl.when(after.abs() > (after - signed).abs())
            .then(pl.lit("entry"))
            .otherwise(pl.lit("exit"))
            .alias("kind")
        )
        .join(tags, on="order_id", how="left", maintain_order="left")
        .with_columns(pl.col("tag").fill_null(""), pl.col("order_type").fill_null(""))
    )


def order_levels(orders: pl.DataFrame, end: Any) -> pl.DataFrame:
    """Resting stop and limit orders as price levels over the time they rested; an order still open at
    the end of the data rests until `end` (a datetime)."""
    price = (
        pl.when(pl.col("type").is_in(STOP_TYPES))
        .then(pl.col("stop_price"))
        .otherwise(pl.col("limit_price"))
    )
    kind = pl.when(pl.col("type").is_in(STOP_TYPES)).then(pl.lit("stop")).otherwise(pl.lit("limit"))
    return (
        typed_orders(orders)
        .filter((pl.col("type") != "market") & (pl.col("status") != "denied"))
        .select(
            "instrument",
            "order_id",
            "side",
            "tag",
            "status",
            pl.col("ts_submitted").alias("start"),
            pl.col("ts_closed").fill_null(end).alias("end"),
            price.alias("price"),
            kind.alias("kind"),
        )
        .filter(pl.col("price").is_not_null())
    )


def typed_orders(orders: pl.DataFrame) -> pl.DataFrame:
    """The orders frame with the dtypes of a run that had orders: a run without any builds its frame
    from empty lists, whose columns come out typed Null."""
    return orders.with_columns(
        pl.col("order_id").cast(pl.Int64),
        pl.col("instrument", "side", "type", "status", "tag").cast(pl.String),
        pl.col("stop_price", "limit_price").cast(pl.Float64),
        pl.col("ts_submitted", "ts_closed").cast(pl.Datetime("ns", "UTC")),
    )


def monthly_returns(equity: pl.DataFrame, initial_equity: float) -> pl.DataFrame:
    """Return of each calendar month (UTC), from the equity at the previous month's last bar (the
    initial equity for the first month) to this month's last bar."""
    month_end = (
        equity.group_by(pl.col("ts").dt.truncate("1mo").alias("month"), maintain_order=True)
        .agg(pl.col("equity").last())
        .sort("month")
    )
    previous = month_end["equity"].shift(1).fill_null(initial_equity)
    return month_end.select(
        pl.col("month").dt.year().alias("year"),
        pl.col("month").dt.month().alias("month"),
        (100.0 * (pl.col("equity") / previous - 1.0)).alias("return_pct"),
    )


def yearly_returns(monthly: pl.DataFrame) -> pl.DataFrame:
    return (
        monthly.group_by("year", maintain_order=True)
        .agg((100.0 * ((pl.col("return_pct") / 100.0 + 1.0).product() - 1.0)).alias("return_pct"))
        .sort("year")
    )


def exposure_pct(equity: pl.DataFrame) -> np.ndarray:
    """What is held, as a percentage of equity, bar by bar (0 where equity is not positive): the
    positions' notional where the run recorded it (a margin account's position value is its
    unrealized profit), else their value."""
    column = "notional" if "notional" in equity.columns else "position_value"
    value = equity[column].to_numpy()
    total = equity["equity"].to_numpy()
    out = np.zeros(len(total))
    np.divide(100.0 * value, total, out=out, where=total > 0)
    return out


def closed_trades(trades: pl.DataFrame) -> pl.DataFrame:
    return trades.filter(~pl.col("is_open")).with_columns(
        (pl.col("duration").dt.total_seconds() / 3600.0).alias("duration_hours")
    )


def buy_and_hold(bars: pl.DataFrame, initial_equity: float) -> pl.DataFrame:
    """The equity of putting everything into the instrument at the first close, for comparison."""
    first = float(bars["close"][0])
    return bars.select("ts", (initial_equity * pl.col("close") / first).alias("equity"))
