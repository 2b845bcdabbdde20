"""`Optimization.plot()`: a sweep's charts as one Bokeh layout, shown inline in a notebook."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from bokeh.io import output_notebook, show
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.resources import INLINE

from backtester.progress import in_notebook
from backtester.report.distributions import plain_figure
from backtester.report.sweep_figures import objective_heatmap, parameter_scatter

if TYPE_CHECKING:
    from backtester.optimize import Optimization

PARAM_PREFIX = "param."


def plot_optimization(
    found: Optimization,
    x: str | None = None,
    y: str | None = None,
    *,
    show_inline: bool | None = None,
) -> Any:
    stat, direction = found.objectives[0]
    maximize = direction == "maximize"
    ok = found.table.filter(pl.col("status") == "ok")
    if ok.schema[stat].is_float():
        ok = ok.filter(pl.col(stat).is_not_nan())
    params = [c for c in found.table.columns if c.startswith(PARAM_PREFIX)]
    axes = [PARAM_PREFIX + a if a and not a.startswith(PARAM_PREFIX) else a for a in (x, y) if a]
    axes += [p for p in params if p not in axes][: max(0, 2 - len(axes))]
    charts: list[Any] = []
    if found.method not in ("grid", "random"):
        charts.append(history(ok, stat, maximize))
    if len(axes) == 2:
        charts.append(objective_heatmap(ok, axes[0], axes[1], stat, maximize))
    charts += [parameter_scatter(ok, name, stat) for name in params]
    layout = column(*charts, sizing_mode="stretch_width")
    if show_inline if show_inline is not None else in_notebook():
        output_notebook(resources=INLINE, hide_banner=True)
        show(layout)
    return layout


def history(ok: pl.DataFrame, stat: str, maximize: bool) -> Any:
    """The objective of each trial in trial order, and the best so far."""
    index = ok["index"].to_numpy()
    values = ok[stat].cast(pl.Float64).to_numpy()
    running = np.maximum.accumulate(values) if maximize else np.minimum.accumulate(values)
    fig = plain_figure(f"{stat} by trial, and the best so far", 260)
    source = ColumnDataSource({"trial": index, "value": values, "best": running})
    fig.scatter("trial", "value", source=source, size=5, alpha=0.6, name="trials")
    fig.line("trial", "best", source=source, line_width=2, color="#d62728", name="best-so-far")
    fig.add_tools(HoverTool(tooltips=[("trial", "@trial"), (stat, "@value{0.0000}")]))
    fig.xaxis.axis_label = "trial"
    fig.yaxis.axis_label = stat
    return fig
