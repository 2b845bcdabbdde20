"""The run's charts that are not on the time axis: monthly returns, and how trades are distributed in
P&L and duration."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
from bokeh.models import ColumnDataSource, HoverTool, LinearColorMapper
from bokeh.models.annotations import Label
from bokeh.palettes import interp_palette
from bokeh.plotting import figure

from backtester.report.data import MONTHS, closed_trades, monthly_returns, yearly_returns

WIN, LOSS = "#1b9e3e", "#d62728"
# Red for losses through white to green for gains; the scale is symmetric so white is exactly 0 %.
DIVERGING = interp_palette(("#c62828", "#f7f7f7", "#2e7d32"), 21)


def plain_figure(title: str, height: int, **kwargs: Any) -> Any:
    fig = figure(
        title=title,
        height=height,
        sizing_mode="stretch_width",
        tools="pan,wheel_zoom,box_zoom,reset,save",
        **kwargs,
    )
    fig.toolbar.logo = None
    return fig


def monthly_heatmap(equity: pl.DataFrame, initial_equity: float) -> Any:
    """Calendar heatmap: one row per year, one column per month and one for the whole year."""
    monthly = monthly_returns(equity, initial_equity)
    yearly = yearly_returns(monthly)
    years = [str(y) for y in yearly["year"].to_list()]
    columns = [*MONTHS, "Year"]
    cells = pl.concat(
        [
            monthly.select(
                pl.col("year").cast(pl.String),
                pl.col("month").map_elements(lambda m: MONTHS[m - 1], return_dtype=pl.String),
                "return_pct",
            ),
            yearly.select(
                pl.col("year").cast(pl.String), pl.lit("Year").alias("month"), "return_pct"
            ),
        ]
    )
    values = cells["return_pct"].to_numpy()
    # Scaled to the months: a year's total would wash them out (it is clamped to the end colours).
    months = monthly["return_pct"].to_numpy()
    bound = max(float(np.abs(months).max()) if len(months) else 0.0, 0.01)
    mapper = LinearColorMapper(palette=DIVERGING, low=-bound, high=bound)
    source = ColumnDataSource(
        {
            "year": cells["year"].to_list(),
            "month": cells["month"].to_list(),
            "return_pct": values,
            "label": [f"{v:+.1f}%" for v in values],
        }
    )
    fig = plain_figure(
        "Monthly returns (UTC calendar months)",
        max(140, 60 + 40 * len(years)),
        x_range=columns,
        y_range=list(reversed(years)),
        toolbar_location=None,
    )
    fig.rect(
        "month",
        "year",
        0.96,
        0.92,
        source=source,
        fill_color={"field": "return_pct", "transform": mapper},
        line_color=None,
        name="monthly-returns",
    )
    fig.text(
        "month",
        "year",
        text="label",
        source=source,
        text_align="center",
        text_baseline="middle",
        text_font_size="11px",
    )
    fig.add_tools(HoverTool(tooltips=[("month", "@month @year"), ("return", "@label")]))
    fig.grid.grid_line_color = None
    fig.axis.axis_line_color = None
    fig.axis.major_tick_line_color = None
    return fig


def pnl_histogram(trades: pl.DataFrame) -> Any:
    """Closed trades' returns in bins, winners and losers coloured apart (the zero edge is a bin edge)."""
    returns = closed_trades(trades)["return_pct"].to_numpy()
    fig = plain_figure(f"Trade returns ({len(returns)} closed trades)", 260)
    fig.xaxis.axis_label = "return per trade %"
    fig.yaxis.axis_label = "trades"
    edges = _edges_through_zero(returns)
    counts, _ = np.histogram(returns, bins=edges)
    source = ColumnDataSource(
        {
            "left": edges[:-1],
            "right": edges[1:],
            "count": counts,
            "color": np.where(edges[:-1] >= 0, WIN, LOSS),
        }
    )
    fig.quad(
        "left",
        "right",
        "count",
        0,
        source=source,
        fill_color="color",
        line_color="white",
        name="pnl-histogram",
    )
    fig.add_tools(
        HoverTool(tooltips=[("return", "@left{0.00}% to @right{0.00}%"), ("trades", "@count")])
    )
    _label_if_empty(fig, len(returns))
    return fig


def duration_scatter(trades: pl.DataFrame) -> Any:
    """Each closed trade's return against how long it was held."""
    closed = closed_trades(trades)
    fig = plain_figure("Trade duration and return", 260)
    fig.xaxis.axis_label = "duration (hours)"
    fig.yaxis.axis_label = "return %"
    returns = closed["return_pct"].to_numpy()
    source = ColumnDataSource(
        {
            "hours": closed["duration_hours"].to_numpy(),
            "return_pct": returns,
            "pnl": closed["pnl"].to_numpy(),
            "color": np.where(returns >= 0, WIN, LOSS),
        }
    )
    fig.scatter(
        "hours",
        "return_pct",
        source=source,
        color="color",
        alpha=0.6,
        size=6,
        name="trade-durations",
    )
    fig.add_tools(
        HoverTool(
            tooltips=[
                ("held", "@hours{0.00} h"),
                ("return", "@return_pct{0.000}%"),
                ("P&L", "@pnl{0,0.00}"),
            ]
        )
    )
    _label_if_empty(fig, closed.height)
    return fig


def _edges_through_zero(values: np.ndarray, bins: int = 40) -> np.ndarray:
    if len(values) == 0:
        return np.array([-1.0, 0.0, 1.0])
    low, high = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    width = (high - low) / bins or 1.0
    start = math.floor(low / width) * width
    count = int(np.ceil((high - start) / width)) + 1
    return start + width * np.arange(count + 1, dtype=np.float64)


def _label_if_empty(fig: Any, count: int) -> None:
    if count == 0:
        fig.add_layout(
            Label(x=10, y=10, x_units="screen", y_units="screen", text="no closed trades")
        )
