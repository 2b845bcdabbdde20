"""Charts of a sweep's results table: the objective over two parameters, and per parameter."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
from bokeh.models import ColumnDataSource, HoverTool, LinearColorMapper
from bokeh.models.annotations import ColorBar
from bokeh.palettes import Viridis256

from backtester.report.distributions import plain_figure

PARAM_PREFIX = "param."


def objective_heatmap(ok: pl.DataFrame, x: str, y: str, objective: str, maximize: bool) -> Any:
    """One cell per (x, y) pair holding the best objective over every other parameter and seed, so
    a cell shows what that pair can reach; the hover says over how many points."""
    best = pl.col(objective).max() if maximize else pl.col(objective).min()
    cells = (
        ok.group_by(x, y)
        .agg(best.alias("value"), pl.len().alias("points"))
        .sort(x, y)
        .with_columns(pl.col(x).cast(pl.String).alias("x"), pl.col(y).cast(pl.String).alias("y"))
    )
    x_factors = _factors(ok[x])
    y_factors = _factors(ok[y])
    values = cells["value"].cast(pl.Float64).to_numpy()
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    palette = Viridis256 if maximize else Viridis256[::-1]
    mapper = LinearColorMapper(palette=palette, low=low, high=high if high > low else low + 1e-9)
    source = ColumnDataSource(
        {
            "x": cells["x"].to_list(),
            "y": cells["y"].to_list(),
            "value": values,
            "points": cells["points"].to_numpy(),
            "label": [_short(v) for v in values],
        }
    )
    x_name, y_name = x.removeprefix(PARAM_PREFIX), y.removeprefix(PARAM_PREFIX)
    fig = plain_figure(
        f"{objective}: best over the other parameters, by {x_name} and {y_name}",
        max(260, min(120 + 28 * len(y_factors), 700)),
        x_range=x_factors,
        y_range=y_factors,
    )
    fig.rect(
        "x",
        "y",
        1.0,
        1.0,
        source=source,
        fill_color={"field": "value", "transform": mapper},
        line_color="white",
        name="objective-heatmap",
    )
    if len(x_factors) <= 24 and len(y_factors) <= 30:
        fig.text(
            "x",
            "y",
            text="label",
            source=source,
            text_align="center",
            text_baseline="middle",
            text_font_size="10px",
            text_color="#ffffff",
        )
    fig.add_layout(ColorBar(color_mapper=mapper, width=10), "right")
    fig.add_tools(
        HoverTool(
            tooltips=[
                (x_name, "@x"),
                (y_name, "@y"),
                (objective, "@value{0.0000}"),
                ("points", "@points"),
            ]
        )
    )
    fig.xaxis.axis_label = x_name
    fig.yaxis.axis_label = y_name
    fig.grid.grid_line_color = None
    return fig


def parameter_scatter(ok: pl.DataFrame, parameter: str, objective: str) -> Any:
    """Every successful point: the parameter's value against the objective."""
    name = parameter.removeprefix(PARAM_PREFIX)
    numeric = ok.schema[parameter].is_numeric()
    kwargs: dict[str, Any] = {} if numeric else {"x_range": _factors(ok[parameter])}
    fig = plain_figure(f"{objective} by {name}", 260, **kwargs)
    x = ok[parameter].cast(pl.Float64) if numeric else ok[parameter].cast(pl.String)
    source = ColumnDataSource(
        {
            "x": x.to_numpy() if numeric else x.to_list(),
            "value": ok[objective].cast(pl.Float64).to_numpy(),
            "run_id": ok["run_id"].cast(pl.String).to_list()
            if "run_id" in ok.columns
            else [""] * ok.height,
        }
    )
    fig.scatter(
        "x", "value", source=source, size=7, alpha=0.6, color="#1f4e9c", name="parameter-scatter"
    )
    fig.add_tools(
        HoverTool(tooltips=[(name, "@x"), (objective, "@value{0.0000}"), ("run", "@run_id")])
    )
    fig.xaxis.axis_label = name
    fig.yaxis.axis_label = objective
    return fig


def _factors(column: pl.Series) -> list[str]:
    """Axis categories in the parameter's own order (numeric when it is numeric), as text."""
    return [str(v) for v in column.unique().sort().to_list()]


def _short(value: float) -> str:
    if not math.isfinite(value):
        return ""
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
