"""Candles with levels of detail: the whole run at a coarse interval, finer intervals embedded too,
and the chart switches to the finest level whose visible candles fit the budget as you zoom.

Every level is built as an exchange builds a higher timeframe (first open, highest high, lowest low,
last close), so no level hides an extreme. The switch, and the refit of the price axis to the visible
candles, run in the browser on every change of the shared time range.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from bokeh.models import ColumnDataSource, CustomJS, HoverTool, Range1d

from backtester.report.data import epoch_ms
from backtester.report.downsample import MAX_CANDLES, candle_levels

UP, DOWN = "#26a69a", "#ef5350"
COLUMNS = ("open", "high", "low", "close", "volume")

# Pick the level, copy the visible window (plus one window either side, so a pan shows candles before
# the next refresh) into the up and down sources, then fit the y range to the visible candles.
_LEVEL_OF_DETAIL = """
const span = xr.end - xr.start;
let k = 0;
for (let i = 1; i < levels.length; i++) { if (span / intervals[i] <= max_visible) { k = i; } }
const d = levels[k].data, x = d.x, n = x.length, step = intervals[k];
function bisect(v) {
  let a = 0, b = n;
  while (a < b) { const m = (a + b) >> 1; if (x[m] < v) { a = m + 1; } else { b = m; } }
  return a;
}
const first = k === 0 ? 0 : Math.max(bisect(xr.start - span - step) - 1, 0);
const last = k === 0 ? n : Math.min(bisect(xr.end + span) + 1, n);
const parts = [{}, {}];
for (const p of parts) {
  for (const c of ["x", "open_time", "open", "high", "low", "close", "volume", "width"]) { p[c] = []; }
}
let mn = Infinity, mx = -Infinity;
for (let i = first; i < last; i++) {
  const p = d.close[i] >= d.open[i] ? parts[0] : parts[1];
  p.x.push(x[i] + step / 2); p.open_time.push(x[i]); p.width.push(0.8 * step);
  p.open.push(d.open[i]); p.high.push(d.high[i]); p.low.push(d.low[i]);
  p.close.push(d.close[i]); p.volume.push(d.volume[i]);
  if (x[i] + step >= xr.start && x[i] <= xr.end) {
    if (d.low[i] < mn) { mn = d.low[i]; }
    if (d.high[i] > mx) { mx = d.high[i]; }
  }
}
up.data = parts[0];
down.data = parts[1];
title.text = prefix + labels[k] + " candles";
if (isFinite(mn) && isFinite(mx)) {
  const pad = mx > mn ? 0.05 * (mx - mn) : Math.abs(mx) * 0.01 + 1e-9;
  yr.start = mn - pad;
  yr.end = mx + pad;
}
"""


def add_candles(
    fig: Any,
    symbol: str,
    bars: pl.DataFrame,
    bar_interval_ns: int,
    x_range: Range1d,
    y_range: Range1d,
) -> None:
    """Draw `bars` on `fig` as candles that refine on zoom; `fig`'s title names the interval shown."""
    levels = candle_levels(bars, bar_interval_ns)
    coarsest_interval, coarsest = levels[0]
    labels = [interval_label(interval) for interval, _ in levels]
    prefix = f"{symbol}: "
    fig.title.text = f"{prefix}{labels[0]} candles"
    displayed = []
    bodies = []
    for rising, color, direction in ((True, UP, "up"), (False, DOWN, "down")):
        part = coarsest.filter((pl.col("close") >= pl.col("open")) == rising)
        source = _display_source(part, coarsest_interval)
        fig.segment("x", "high", "x", "low", source=source, color=color, name=f"wicks-{direction}")
        bodies.append(
            fig.vbar(
                "x",
                "width",
                "open",
                "close",
                source=source,
                color=color,
                name=f"candles-{direction}",
            )
        )
        displayed.append(source)
    fig.add_tools(
        HoverTool(
            renderers=bodies,
            tooltips=[
                ("time", "@open_time{%F %H:%M}"),
                ("open", "@open{0,0.00}"),
                ("high", "@high{0,0.00}"),
                ("low", "@low{0,0.00}"),
                ("close", "@close{0,0.00}"),
                ("volume", "@volume{0,0.000}"),
            ],
            formatters={"@open_time": "datetime"},
        )
    )
    callback = CustomJS(
        args={
            "levels": [_level_source(candles) for _, candles in levels],
            "intervals": [interval / 1e6 for interval, _ in levels],
            "labels": labels,
            "max_visible": MAX_CANDLES,
            "up": displayed[0],
            "down": displayed[1],
            "title": fig.title,
            "prefix": prefix,
            "xr": x_range,
            "yr": y_range,
        },
        code=_LEVEL_OF_DETAIL,
    )
    x_range.js_on_change("start", callback)
    x_range.js_on_change("end", callback)


def _level_source(candles: pl.DataFrame) -> ColumnDataSource:
    """A level as the browser keeps it: bucket open time (ms) and OHLCV, nothing derived."""
    return ColumnDataSource(
        {"x": epoch_ms(candles["ts"]), **{c: candles[c].to_numpy() for c in COLUMNS}}
    )


def _display_source(candles: pl.DataFrame, interval_ns: int) -> ColumnDataSource:
    open_time = epoch_ms(candles["ts"])
    return ColumnDataSource(
        {
            "x": open_time + interval_ns / 2e6,
            "open_time": open_time,
            **{c: candles[c].to_numpy() for c in COLUMNS},
            "width": np.full(candles.height, 0.8 * interval_ns / 1e6),
        }
    )


def interval_label(interval_ns: int) -> str:
    minutes = interval_ns / 60e9
    if minutes >= 1440 and minutes % 1440 == 0:
        return f"{int(minutes // 1440)}d"
    if minutes >= 60 and minutes % 60 == 0:
        return f"{int(minutes // 60)}h"
    if minutes >= 1 and minutes == int(minutes):
        return f"{int(minutes)}m"
    return f"{interval_ns / 1e9:g}s"
