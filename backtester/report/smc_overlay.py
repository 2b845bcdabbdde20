"""Smart Money Concepts drawn over a run's price chart: fair value gaps and order blocks as boxes from
where they start to where they were mitigated (or the end of the data), swing points as markers at
their pivots, breaks of structure and changes of character as lines from the broken swing to the
breaking bar. Drawn from `indicators.smc_zones`, computed from the bars with the strategy's swing
length. Every glyph carries a `name` (`smc-fvg-bull`, `smc-order-blocks-bear`, `smc-swings`,
`smc-bos`, `smc-choch`) so tests can find what it draws; the legend hides any of them on click."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
from bokeh.models import ColumnDataSource, HoverTool

from backtester.indicators import smc_zones
from backtester.metrics.stats import bar_interval_ns

BULL, BEAR = "#26a69a", "#ef5350"
BLOCK_BULL, BLOCK_BEAR = "#1565c0", "#ef6c00"


def add_smc(fig: Any, bars: pl.DataFrame, params: Mapping[str, Any]) -> None:
    swing_length = int(params.get("swing_length", 5))
    ts = bars["ts"].to_numpy()
    times = ts.astype(np.float64) / 1e6
    step = bar_interval_ns(ts) / 1e6
    end = float(times[-1]) + step if len(times) else 0.0
    o, h, low, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    gaps = smc_zones.fvg_zones(o, h, low, c)
    blocks = smc_zones.order_block_zones(o, h, low, c, swing_length)
    for zones, name, colors in (
        (gaps, "smc-fvg", (BULL, BEAR)),
        (blocks.rename({"block": "start"}), "smc-order-blocks", (BLOCK_BULL, BLOCK_BEAR)),
    ):
        for direction, color, side in ((1.0, colors[0], "bull"), (-1.0, colors[1], "bear")):
            _boxes(
                fig,
                zones.filter(pl.col("direction") == direction),
                times,
                end,
                color,
                f"{name}-{side}",
                _label(name, side),
            )
    _swings(fig, smc_zones.swing_points(h, low, swing_length), times)
    breaks = smc_zones.structure_breaks(h, low, c, swing_length)
    for kind, dash in (("bos", "solid"), ("choch", "dashed")):
        _break_lines(fig, breaks.filter(pl.col("kind") == kind), times, kind, dash)


def _label(name: str, side: str) -> str:
    what = "fair value gaps" if name == "smc-fvg" else "order blocks"
    return f"{'bullish' if side == 'bull' else 'bearish'} {what}"


def _boxes(
    fig: Any,
    zones: pl.DataFrame,
    times: np.ndarray,
    end: float,
    color: str,
    name: str,
    label: str,
) -> None:
    mitigated = zones["mitigated"].fill_null(-1).to_numpy()
    stop = np.full(zones.height, end)
    known = mitigated >= 0
    stop[known] = times[mitigated[known]]
    source = ColumnDataSource(
        {
            "left": times[zones["start"].to_numpy()],
            "right": stop,
            "top": zones["top"].to_numpy(),
            "bottom": zones["bottom"].to_numpy(),
            "start": times[zones["start"].to_numpy()],
            "end": stop,
        }
    )
    renderer = fig.quad(
        left="left",
        right="right",
        top="top",
        bottom="bottom",
        source=source,
        fill_color=color,
        fill_alpha=0.15,
        line_color=color,
        line_alpha=0.4,
        legend_label=label,
        name=name,
    )
    fig.add_tools(
        HoverTool(
            renderers=[renderer],
            tooltips=[
                (label, "@bottom{0,0.00} to @top{0,0.00}"),
                ("from", "@start{%F %H:%M}"),
                ("to", "@end{%F %H:%M}"),
            ],
            formatters={"@start": "datetime", "@end": "datetime"},
        )
    )


def _swings(fig: Any, points: pl.DataFrame, times: np.ndarray) -> None:
    high = (points["kind"] == "high").to_numpy()
    source = ColumnDataSource(
        {
            "x": times[points["pivot"].to_numpy()],
            "level": points["level"].to_numpy(),
            "marker": np.where(high, "triangle_dot", "inverted_triangle"),
            "color": np.where(high, BEAR, BULL),
        }
    )
    fig.scatter(
        "x",
        "level",
        source=source,
        marker="marker",
        size=7,
        color="color",
        fill_alpha=0.0,
        legend_label="swing points",
        name="smc-swings",
    )


def _break_lines(fig: Any, breaks: pl.DataFrame, times: np.ndarray, kind: str, dash: str) -> None:
    up = (breaks["direction"] > 0).to_numpy()
    source = ColumnDataSource(
        {
            "x0": times[breaks["swing"].to_numpy()],
            "x1": times[breaks["row"].to_numpy()],
            "level": breaks["level"].to_numpy(),
            "color": np.where(up, BULL, BEAR),
        }
    )
    fig.segment(
        "x0",
        "level",
        "x1",
        "level",
        source=source,
        color="color",
        line_width=1.5,
        line_dash=dash,
        legend_label=kind.upper(),
        name=f"smc-{kind}",
    )
