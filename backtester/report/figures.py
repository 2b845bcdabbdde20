"""The time-linked charts of a run: price with its fills and resting levels, equity, drawdown, exposure.

Pure functions from polars frames to Bokeh figures. They share one x range, so zooming or panning any
of them moves all of them; the price and equity charts refit their y axis to the visible window.
Renderers carry a `name` so tests can find the data each one draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
from bokeh.models import (
    ColumnDataSource,
    CustomJS,
    DataRange1d,
    HoverTool,
    NumeralTickFormatter,
    Range1d,
)
from bokeh.models.annotations import Label
from bokeh.plotting import figure

from backtester.metrics.stats import bar_interval_ns
from backtester.report.candles import add_candles
from backtester.report.data import (
    buy_and_hold,
    epoch_ms,
    exposure_pct,
    fill_markers,
    order_levels,
)
from backtester.report.downsample import m4_indices
from backtester.report.overlays import draw_overlays

BUY, SELL = "#1b9e3e", "#d62728"
EQUITY, BENCHMARK, UNDERWATER, EXPOSURE = "#1f4e9c", "#9e9e9e", "#c62828", "#6a51a3"
LIQUIDATION, FUNDING = "#000000", "#b26a00"
LIQUIDATION_TAG = "liquidation"
TOOLS = "xpan,xwheel_zoom,box_zoom,reset,save"
TIME_FORMAT: dict[str, Any] = {
    "@x": "datetime",
    "@open_time": "datetime",
    "@start": "datetime",
    "@end": "datetime",
}

# Refit the y axis to what is visible after every zoom or pan, as trading charts do. `x` is sorted, so
# the window is found by binary search; one point either side keeps a line's edge in view.
_FIT_Y = """
let mn = Infinity, mx = -Infinity;
for (let s = 0; s < sources.length; s++) {
  const x = sources[s].data.x, lo = sources[s].data[lows[s]], hi = sources[s].data[highs[s]];
  const n = x.length;
  let a = 0, b = n;
  while (a < b) { const m = (a + b) >> 1; if (x[m] < xr.start) { a = m + 1; } else { b = m; } }
  const i = Math.max(a - 1, 0);
  for (let k = i; k < n; k++) {
    if (lo[k] < mn) { mn = lo[k]; }
    if (hi[k] > mx) { mx = hi[k]; }
    if (x[k] > xr.end) { break; }
  }
}
if (!isFinite(mn) || !isFinite(mx)) { return; }
const pad = mx > mn ? 0.05 * (mx - mn) : Math.abs(mx) * 0.01 + 1e-9;
yr.start = mn - pad;
yr.end = mx + pad;
"""


def time_range(equity: pl.DataFrame) -> Range1d:
    """The x range every time chart of a run shares, bounded to the run's span."""
    ns = equity["ts"].dt.epoch("ns").to_numpy()
    step = bar_interval_ns(ns) / 1e6
    start, end = float(ns[0]) / 1e6, float(ns[-1]) / 1e6 + step
    return Range1d(start=start, end=end, bounds=(start - step, end + step), name="time")


def time_figure(
    title: str, x_range: Range1d, height: int, y_label: str, y_range: Range1d | None = None
) -> Any:
    fig = figure(
        title=title,
        x_axis_type="datetime",
        x_range=x_range,
        y_range=DataRange1d() if y_range is None else y_range,
        height=height,
        sizing_mode="stretch_width",
        tools=TOOLS,
        active_drag="xpan",
        active_scroll="xwheel_zoom",
    )
    fig.yaxis.axis_label = y_label
    fig.toolbar.logo = None
    return fig


def price_figure(
    symbol: str,
    bars: pl.DataFrame,
    fills: pl.DataFrame,
    orders: pl.DataFrame,
    trades: pl.DataFrame,
    x_range: Range1d,
    overlays: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """Candles (coarser buckets on long series, refining on zoom, extremes kept), every fill as a
    marker, each trade as a line from entry to exit, resting stop/limit orders as levels, and the
    indicator `overlays` (`report.overlays`)."""
    ts = bars["ts"].to_numpy()
    y_range = _y_range(
        float(bars["low"].min()),  # type: ignore[arg-type]
        float(bars["high"].max()),  # type: ignore[arg-type]
        name=f"price-y-{symbol}",
    )
    fig = time_figure(symbol, x_range, 420, "price", y_range)
    fig.name = f"price-{symbol}"
    add_candles(fig, symbol, bars, bar_interval_ns(ts), x_range, y_range)
    draw_overlays(fig, bars, overlays or {})
    _add_levels(fig, order_levels(orders.filter(pl.col("instrument") == symbol), _end_of(bars)))
    _add_trade_lines(fig, trades.filter(pl.col("instrument") == symbol))
    markers = fill_markers(fills, orders).filter(pl.col("instrument") == symbol)
    _add_fills(fig, markers)
    _add_liquidations(fig, markers)
    fig.legend.location = "top_left"
    fig.legend.click_policy = "hide"
    return fig


def _add_fills(fig: Any, markers: pl.DataFrame) -> None:
    tooltips = [
        ("fill", "@kind @side @quantity{0.000000} @ @price{0,0.00}"),
        ("time", "@x{%F %H:%M}"),
        ("order", "#@order_id @order_type @tag"),
        ("fee", "@fee{0,0.0000}"),
    ]
    for kind, fill_alpha in (("entry", 1.0), ("exit", 0.0)):
        rows = markers.filter(pl.col("kind") == kind)
        buy = (rows["side"] == "buy").to_numpy()
        source = ColumnDataSource(
            {
                "x": epoch_ms(rows["ts"]),
                "price": rows["price"].to_numpy(),
                "quantity": rows["quantity"].to_numpy(),
                "fee": rows["fee"].to_numpy(),
                "order_id": rows["order_id"].to_numpy(),
                "side": rows["side"].to_list(),
                "kind": rows["kind"].to_list(),
                "tag": rows["tag"].to_list(),
                "order_type": rows["order_type"].to_list(),
                "marker": np.where(buy, "triangle", "inverted_triangle"),
                "color": np.where(buy, BUY, SELL),
            }
        )
        renderer = fig.scatter(
            "x",
            "price",
            source=source,
            marker="marker",
            size=11,
            line_color="color",
            fill_color="color",
            fill_alpha=fill_alpha,
            line_width=1.5,
            legend_label=f"{kind} fills",
            name=f"fills-{kind}",
        )
        fig.add_tools(HoverTool(renderers=[renderer], tooltips=tooltips, formatters=TIME_FORMAT))


def _add_trade_lines(fig: Any, trades: pl.DataFrame) -> None:
    """Each trade from entry to exit, coloured by its result: long trades dotted, short ones dashed
    (one legend entry each, so either side can be hidden)."""
    sides = (
        trades["side"] if "side" in trades.columns else pl.repeat("long", trades.height, eager=True)
    )
    for side, dash in (("long", "dotted"), ("short", "dashed")):
        rows = trades.filter(sides == side)
        if rows.height == 0 and side == "short":
            continue
        source = ColumnDataSource(
            {
                "x0": epoch_ms(rows["entry_time"]),
                "y0": rows["entry_price"].to_numpy(),
                "x1": epoch_ms(rows["exit_time"]),
                "y1": rows["exit_price"].to_numpy(),
                "color": np.where((rows["pnl"] >= 0).to_numpy(), BUY, SELL),
            }
        )
        fig.segment(
            "x0",
            "y0",
            "x1",
            "y1",
            source=source,
            color="color",
            line_width=2,
            line_dash=dash,
            legend_label=f"{side} trades",
            name="trade-lines" if side == "long" else "short-trade-lines",
        )


def _add_liquidations(fig: Any, markers: pl.DataFrame) -> None:
    """Fills of the venue's liquidation orders, as crosses over the fill markers."""
    rows = markers.filter(pl.col("tag") == LIQUIDATION_TAG)
    if rows.height == 0:
        return
    source = ColumnDataSource(
        {
            "x": epoch_ms(rows["ts"]),
            "price": rows["price"].to_numpy(),
            "quantity": rows["quantity"].to_numpy(),
            "fee": rows["fee"].to_numpy(),
            "side": rows["side"].to_list(),
        }
    )
    renderer = fig.scatter(
        "x",
        "price",
        source=source,
        marker="x",
        size=16,
        line_width=3,
        color=LIQUIDATION,
        legend_label="liquidations",
        name="liquidations",
    )
    fig.add_tools(
        HoverTool(
            renderers=[renderer],
            tooltips=[
                ("liquidated", "@side @quantity{0.000000} @ @price{0,0.00000}"),
                ("time", "@x{%F %H:%M}"),
                ("liquidation fee", "@fee{0,0.0000}"),
            ],
            formatters=TIME_FORMAT,
        )
    )


def funding_figure(equity: pl.DataFrame, x_range: Range1d) -> Any:
    """Funding paid so far (received: below zero), a step at each payment."""
    fig = time_figure("Funding paid (cumulative)", x_range, 160, "funding")
    fig.yaxis.formatter = NumeralTickFormatter(format="0,0.00")
    source = line_source(equity, "funding")
    line = fig.step(
        "x", "funding", source=source, mode="after", color=FUNDING, line_width=2, name="funding"
    )
    fig.add_tools(
        HoverTool(
            renderers=[line],
            tooltips=[("time", "@x{%F %H:%M}"), ("funding paid", "@funding{0,0.0000}")],
            formatters=TIME_FORMAT,
            mode="vline",
        )
    )
    return fig


def _add_levels(fig: Any, levels: pl.DataFrame) -> None:
    for kind, color, legend in (("stop", SELL, "stop orders"), ("limit", BUY, "limit orders")):
        rows = levels.filter(pl.col("kind") == kind)
        if rows.height == 0:
            continue
        source = ColumnDataSource(
            {
                "start": epoch_ms(rows["start"]),
                "end": epoch_ms(rows["end"]),
                "price": rows["price"].to_numpy(),
                "order_id": rows["order_id"].to_numpy(),
                "tag": rows["tag"].fill_null("").to_list(),
                "status": rows["status"].to_list(),
            }
        )
        renderer = fig.segment(
            "start",
            "price",
            "end",
            "price",
            source=source,
            color=color,
            line_width=2,
            line_alpha=0.7,
            line_dash="dashed",
            legend_label=legend,
            name=f"levels-{kind}",
        )
        fig.add_tools(
            HoverTool(
                renderers=[renderer],
                tooltips=[
                    (kind, "@price{0,0.00} (#@order_id @tag, @status)"),
                    ("resting", "@start{%F %H:%M} to @end{%F %H:%M}"),
                ],
                formatters=TIME_FORMAT,
            )
        )


def equity_figure(
    equity: pl.DataFrame,
    stats: Mapping[str, Any],
    x_range: Range1d,
    benchmark_bars: pl.DataFrame | None = None,
) -> Any:
    """Equity (M4 down-sampled: every peak, trough and the final value kept), the buy-and-hold equity
    of the first instrument for comparison, and the final equity labelled."""
    source = line_source(equity, "equity")
    series = [(source, "equity", "equity")]
    if benchmark_bars is not None and benchmark_bars.height:
        held = buy_and_hold(benchmark_bars, float(stats["initial_equity"]))
        series.append((line_source(held, "equity"), "equity", "equity"))
    low = min(float(np.min(s.data["equity"])) for s, _, _ in series)
    high = max(float(np.max(s.data["equity"])) for s, _, _ in series)
    y_range = _y_range(low, high)
    fig = time_figure("Equity", x_range, 260, "equity", y_range)
    fig.yaxis.formatter = NumeralTickFormatter(format="0,0")
    if len(series) > 1:
        fig.line(
            "x",
            "equity",
            source=series[1][0],
            color=BENCHMARK,
            legend_label="buy and hold",
            name="buy-and-hold",
        )
    line = fig.line(
        "x",
        "equity",
        source=source,
        color=EQUITY,
        line_width=2,
        legend_label="equity",
        name="equity",
    )
    fig.add_tools(
        HoverTool(
            renderers=[line],
            tooltips=[("time", "@x{%F %H:%M}"), ("equity", "@equity{0,0.00}")],
            formatters=TIME_FORMAT,
            mode="vline",
        )
    )
    final_x, final = float(source.data["x"][-1]), float(stats["final_equity"])
    fig.scatter([final_x], [final], size=9, color=EQUITY, name="final-equity")
    fig.add_layout(
        Label(
            x=final_x,
            y=final,
            text=f"final {final:,.2f}",
            text_align="right",
            y_offset=8,
            text_font_size="11px",
            name="final-equity-label",
        )
    )
    _fit_y_on_zoom(x_range, y_range, series)
    fig.legend.location = "top_left"
    fig.legend.click_policy = "hide"
    return fig


def drawdown_figure(equity: pl.DataFrame, stats: Mapping[str, Any], x_range: Range1d) -> Any:
    """The underwater curve: how far equity is below its running peak, with the deepest point marked."""
    fig = time_figure("Drawdown (underwater)", x_range, 180, "drawdown %")
    source = line_source(equity, "drawdown_pct")
    fig.varea(
        "x", 0.0, "drawdown_pct", source=source, color=UNDERWATER, alpha=0.45, name="drawdown"
    )
    fig.add_tools(
        HoverTool(
            tooltips=[("time", "@x{%F %H:%M}"), ("drawdown", "@drawdown_pct{0.00}%")],
            formatters=TIME_FORMAT,
            mode="vline",
        )
    )
    deepest = int(np.argmin(equity["drawdown_pct"].to_numpy()))
    x = float(epoch_ms(equity["ts"][deepest : deepest + 1])[0])
    depth = float(stats["max_drawdown_pct"])
    fig.scatter([x], [depth], size=8, color=UNDERWATER, name="max-drawdown")
    fig.add_layout(Label(x=x, y=depth, text=f"max {depth:.2f}%", x_offset=6, text_font_size="11px"))
    return fig


def exposure_figure(equity: pl.DataFrame, stats: Mapping[str, Any], x_range: Range1d) -> Any:
    """Position value as a share of equity over time; the title carries the time-in-market figure."""
    frame = equity.select("ts").with_columns(pl.Series("exposure_pct", exposure_pct(equity)))
    title = f"Exposure (in the market {float(stats.get('exposure_time_pct', 0.0)):.1f}% of bars)"
    fig = time_figure(title, x_range, 160, "% of equity")
    source = line_source(frame, "exposure_pct")
    fig.varea("x", 0.0, "exposure_pct", source=source, color=EXPOSURE, alpha=0.5, name="exposure")
    fig.add_tools(
        HoverTool(
            tooltips=[("time", "@x{%F %H:%M}"), ("exposure", "@exposure_pct{0.0}%")],
            formatters=TIME_FORMAT,
            mode="vline",
        )
    )
    return fig


def line_source(frame: pl.DataFrame, column: str) -> ColumnDataSource:
    values = frame[column].to_numpy()
    keep = m4_indices(values)
    return ColumnDataSource({"x": epoch_ms(frame["ts"])[keep], column: values[keep]})


def _fit_y_on_zoom(
    x_range: Range1d, y_range: Range1d, series: list[tuple[ColumnDataSource, str, str]]
) -> None:
    """`series`: (source, low column, high column); the sources have a sorted `x` column."""
    callback = CustomJS(
        args={
            "sources": [source for source, _, _ in series],
            "lows": [low for _, low, _ in series],
            "highs": [high for _, _, high in series],
            "xr": x_range,
            "yr": y_range,
        },
        code=_FIT_Y,
    )
    x_range.js_on_change("start", callback)
    x_range.js_on_change("end", callback)


def _y_range(low: float, high: float, name: str | None = None) -> Range1d:
    pad = 0.05 * (high - low) if high > low else abs(high) * 0.01 + 1e-9
    return Range1d(start=low - pad, end=high + pad, name=name)


def _end_of(bars: pl.DataFrame) -> Any:
    return pl.Series([int(bars["ts"][-1])]).cast(pl.Datetime("ns", "UTC"))[0]
