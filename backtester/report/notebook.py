"""`RunResult.plot()`: the report's charts as one Bokeh layout, shown inline in a notebook."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from bokeh.io import output_notebook, show
from bokeh.layouts import column, row
from bokeh.resources import INLINE

from backtester.progress import in_notebook
from backtester.report.data import RunData
from backtester.report.html import write_html
from backtester.report.overlays import overlays_for
from backtester.report.run_page import run_charts, run_page

if TYPE_CHECKING:
    from backtester.results import RunResult


def result_data(result: RunResult, bars: Mapping[str, pl.DataFrame] | None = None) -> RunData:
    params = ", ".join(f"{k}={v}" for k, v in result.params.items())
    return RunData(
        title=f"{result.strategy}({params})",
        stats=result.stats,
        trades=result.trades,
        fills=result.fills,
        orders=result.orders,
        equity=result.equity,
        bars=dict(bars or {}),
        about={
            "strategy": result.strategy,
            "params": params,
            "seed": result.seed,
            "digest": result.digest,
        },
        overlays=overlays_for(result.strategy, result.params),
    )


def plot_result(
    result: RunResult,
    bars: Mapping[str, pl.DataFrame] | None = None,
    *,
    filename: str | Path | None = None,
    show_inline: bool | None = None,
) -> Any:
    """Build the figure; show it when running in a notebook (or when `show_inline`), and with
    `filename` also write the full self-contained report page there."""
    data = result_data(result, bars)
    charts = run_charts(data)
    wide = [chart.model for chart in charts if chart.wide]
    narrow = [chart.model for chart in charts if not chart.wide]
    layout = column(*wide, row(*narrow, sizing_mode="stretch_width"), sizing_mode="stretch_width")
    if filename is not None:
        write_html(Path(filename), run_page(data))
    if show_inline if show_inline is not None else in_notebook():
        output_notebook(resources=INLINE, hide_banner=True)
        show(layout)
    return layout
