"""`report runs/walkforward/<id>`: a walk-forward's page: the folds (windows, best in-sample point,
its out-of-sample result, links to its run report and to the fold's sweep), the stitched
out-of-sample equity with each fold's test window shaded, its drawdown and its statistics.

Reads what the walk-forward leaves: `folds.parquet`, `equity.parquet` and `walkforward.json`.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from bokeh.models.annotations import BoxAnnotation

from backtester.report.figures import drawdown_figure, equity_figure, time_range
from backtester.report.html import (
    Chart,
    Html,
    format_value,
    grid_table,
    key_value_table,
    render_page,
    write_html,
)
from backtester.report.run_report import RunDirError, read_json
from backtester.report.sweep_report import SWEEP_REPORT, run_link

REPORT = "report.html"
SUMMARY = "walkforward.json"
SHOWN_STATS = (
    "total_return_pct",
    "buy_and_hold_return_pct",
    "cagr_pct",
    "sharpe",
    "sortino",
    "max_drawdown_pct",
    "volatility_ann_pct",
    "trades",
    "win_rate_pct",
    "profit_factor",
    "exposure_time_pct",
    "fees_paid",
)
_SHADE = ("#e8eefb", "#f6f7fa")


def is_walk_forward(directory: Path) -> bool:
    return (directory / SUMMARY).is_file()


def write_walk_forward_report(directory: str | Path, output: str | Path | None = None) -> Path:
    where = Path(directory)
    if not is_walk_forward(where):
        raise RunDirError(f"{where}: not a walk-forward directory (no {SUMMARY})")
    summary = read_json(where / SUMMARY)
    folds = pl.read_parquet(where / "folds.parquet")
    equity = pl.read_parquet(where / "equity.parquet")
    target = Path(output) if output else where / REPORT
    runs = where.resolve().parent.parent
    return write_html(target, walk_forward_page(summary, folds, equity, runs, target.parent))


def walk_forward_page(
    summary: dict[str, Any], folds: pl.DataFrame, equity: pl.DataFrame, runs: Path, page_dir: Path
) -> str:
    objective = summary.get("objective", {})
    stat, direction = objective.get("stat", ""), objective.get("direction", "")
    windows = "anchored" if summary.get("anchored") else "rolling"
    title = f"Walk-forward {summary.get('name', '')} {summary.get('walk_forward_id', '')}"
    subtitle = (
        f"{summary.get('folds')} folds ({windows}: train {summary.get('train')}, test "
        f"{summary.get('test')}, step {summary.get('step')}); each optimized by {stat} "
        f"({direction}) in sample and run out of sample on the window after"
    )
    blocks: list[Chart | Html] = []
    stats = summary.get("stats") or {}
    if equity.height and stats:
        curve = equity.with_columns(
            (100.0 * (pl.col("equity") / pl.col("equity").cum_max() - 1.0)).alias("drawdown_pct")
        )
        x_range = time_range(curve)
        chart = equity_figure(curve, stats, x_range)
        chart.title.text = "Stitched out-of-sample equity (each fold's test window shaded)"
        _shade_folds(chart, folds)
        blocks.append(Chart("equity", chart))
        blocks.append(Chart("drawdown", drawdown_figure(curve, stats, x_range)))
    blocks.append(Html("folds", "Folds", fold_table(folds, stat, runs, page_dir)))
    shown = [(name, stats[name]) for name in SHOWN_STATS if name in stats]
    blocks.append(
        Html(
            "stats",
            "Out of sample, stitched",
            key_value_table(shown, signed={"total_return_pct", "cagr_pct", "sharpe"}),
            wide=False,
        )
    )
    blocks.append(Html("provenance", "What produced it", _provenance(summary)))
    return render_page(title, subtitle, blocks)


def fold_table(folds: pl.DataFrame, stat: str, runs: Path, page_dir: Path) -> str:
    params = [c for c in folds.columns if c.startswith("param.")]
    header = ["fold", "train", "test", *(p.removeprefix("param.") for p in params)]
    header += [f"{stat} in sample", f"{stat} out of sample", "return % out of sample", "run"]
    header.append("in-sample sweep")
    rows = []
    for row in folds.iter_rows(named=True):
        cells = [str(row["fold"]), _window(row, "train"), _window(row, "test")]
        cells += [html.escape(format_value(row[p])) for p in params]
        cells.append(html.escape(format_value(row.get(f"in_sample.{stat}"))))
        cells.append(html.escape(format_value(row.get(f"out_of_sample.{stat}"))))
        cells.append(html.escape(format_value(row.get("out_of_sample.total_return_pct"))))
        run_id = row.get("run_id")
        cells.append(run_link(str(run_id), runs, page_dir) if run_id else "none")
        cells.append(_sweep_link(str(row["sweep_id"]), runs, page_dir))
        rows.append(cells)
    return grid_table(header, rows)


def _window(row: dict[str, Any], name: str) -> str:
    start, end = row[f"{name}_start"], row[f"{name}_end"]
    return html.escape(f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}")


def _sweep_link(sweep_id: str, runs: Path, page_dir: Path) -> str:
    report = runs / "sweeps" / sweep_id / SWEEP_REPORT
    code = f"<code>{html.escape(sweep_id)}</code>"
    if not report.is_file():
        return code
    href = Path(os.path.relpath(report.resolve(), page_dir.resolve())).as_posix()
    return f'<a href="{html.escape(href)}">{code}</a>'


def _shade_folds(chart: Any, folds: pl.DataFrame) -> None:
    for i, row in enumerate(folds.iter_rows(named=True)):
        if row.get("run_id") is None:
            continue
        left, right = (
            float(np.datetime64(row[k].replace(tzinfo=None), "ns").astype(np.int64)) / 1e6
            for k in ("test_start", "test_end")
        )
        chart.add_layout(
            BoxAnnotation(
                left=left, right=right, fill_color=_SHADE[i % 2], fill_alpha=0.6, level="underlay"
            )
        )


def _provenance(summary: dict[str, Any]) -> str:
    fields = ("walk_forward_id", "name", "config_sha256", "folds", "digest")
    rows = [(name, summary[name]) for name in fields if summary.get(name) is not None]
    rows += [(name, summary[name]) for name in ("started_at", "finished_at") if name in summary]
    return key_value_table(rows)
