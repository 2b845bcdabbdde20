"""`report runs/sweeps/<sweep_id>`: the objective over two chosen parameters as a heatmap, each
parameter against the objective, and the best points linking to their run reports.

Reads what the sweep leaves: `results.parquet` (one row per point: `index`, `param.<name>` columns,
`seed`, `run_id`, `status`, `digest`, `error`, then every statistic) and `manifest.json` (sweep_id,
name, objective {stat, direction}, points, ok, failed, digest, code and data facts). A point's run
directory is `<output_dir>/<run_id>/` when it was run on its own (the same run id as the sweep's);
its report is generated when the sweep report links to it.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from backtester.report.html import (
    Chart,
    Html,
    format_value,
    grid_table,
    key_value_table,
    note,
    render_page,
    write_html,
)
from backtester.report.run_report import REPORT, RunDirError, read_json, write_run_report
from backtester.report.sweep_figures import objective_heatmap, parameter_scatter

SWEEP_REPORT = "report.html"
SWEEP_CONFIG = "sweep.json"
OVERFITTING = "overfitting.json"
PARAM_PREFIX = "param."
SHOWN_STATS = ("total_return_pct", "sharpe", "max_drawdown_pct", "trades", "win_rate_pct")


@dataclass(frozen=True)
class Sweep:
    directory: Path
    results: pl.DataFrame
    manifest: Mapping[str, Any]
    parameters: list[str]
    objective: str
    maximize: bool

    @property
    def ok(self) -> pl.DataFrame:
        ok = self.results.filter(pl.col("status") == "ok")
        if self.objective in ok.columns and ok.schema[self.objective].is_float():
            ok = ok.filter(pl.col(self.objective).is_not_nan())
        return ok

    def ranked(self) -> pl.DataFrame:
        return self.ok.sort(
            [self.objective, "index"] if "index" in self.ok.columns else [self.objective],
            descending=[self.maximize, False] if "index" in self.ok.columns else [self.maximize],
            nulls_last=True,
        )


def load_sweep(
    directory: Path, objective: str | None = None, minimize: bool | None = None
) -> Sweep:
    path = directory / "results.parquet"
    if not path.is_file():
        raise RunDirError(f"{directory}: not a sweep directory (no results.parquet)")
    results = pl.read_parquet(path)
    manifest_path = directory / "manifest.json"
    manifest = read_json(manifest_path) if manifest_path.is_file() else {}
    recorded = manifest.get("objective") or {}
    stat = objective or recorded.get("stat") or "sharpe"
    if stat not in results.columns:
        raise RunDirError(f"{directory}: no column {stat!r} in results.parquet to rank by")
    maximize = not minimize if minimize is not None else recorded.get("direction") != "minimize"
    parameters = [c for c in results.columns if c.startswith(PARAM_PREFIX)]
    return Sweep(directory, results, manifest, parameters, stat, maximize)


def write_sweep_report(
    directory: str | Path,
    *,
    x: str | None = None,
    y: str | None = None,
    objective: str | None = None,
    minimize: bool | None = None,
    top: int | None = None,
    runs_dir: str | Path | None = None,
    output: str | Path | None = None,
) -> Path:
    """`x`, `y`: parameter names (with or without `param.`); by default the first two. `runs_dir`
    holds the points' run directories (default: two levels above the sweep, `runs/`). `top`:
    rows of the best-points table (default: the sweep config's `top`, else 10)."""
    sweep = load_sweep(Path(directory), objective, minimize)
    if top is None:
        top = _configured_top(sweep.directory)
    axes = _axes(sweep, x, y)
    runs = Path(runs_dir) if runs_dir else sweep.directory.resolve().parent.parent
    target = Path(output) if output else sweep.directory / SWEEP_REPORT
    page = sweep_page(sweep, axes, top, runs, target.parent)
    return write_html(target, page)


def _configured_top(directory: Path) -> int:
    path = directory / SWEEP_CONFIG
    if path.is_file():
        found = read_json(path).get("top")
        if isinstance(found, int) and not isinstance(found, bool) and found >= 0:
            return found
    return 10


def _axes(sweep: Sweep, x: str | None, y: str | None) -> list[str]:
    chosen = [_column(sweep, name) for name in (x, y) if name]
    for name in sweep.parameters:
        if len(chosen) >= 2:
            break
        if name not in chosen:
            chosen.append(name)
    return chosen


def _column(sweep: Sweep, name: str) -> str:
    column = name if name.startswith(PARAM_PREFIX) else PARAM_PREFIX + name
    if column not in sweep.parameters:
        known = ", ".join(p.removeprefix(PARAM_PREFIX) for p in sweep.parameters)
        raise RunDirError(f"no parameter {name!r} in this sweep (it has: {known})")
    return column


def sweep_page(sweep: Sweep, axes: list[str], top: int, runs: Path, page_dir: Path) -> str:
    manifest = sweep.manifest
    direction = "highest" if sweep.maximize else "lowest"
    failed = sweep.results.height - sweep.ok.height
    title = f"Sweep {manifest.get('name', '')} {manifest.get('sweep_id', sweep.directory.name)}"
    subtitle = (
        f"{sweep.results.height} points, {sweep.ok.height} ok, {failed} failed or without a value; "
        f"objective: {sweep.objective} ({direction} is best)"
    )
    blocks: list[Chart | Html] = []
    if failed:
        blocks.append(Html("note-failed", "", note(_failure_note(sweep))))
    blocks.append(
        Html("top", f"Top {top} by {sweep.objective}", top_table(sweep, top, runs, page_dir))
    )
    if len(axes) == 2:
        blocks.append(
            Chart(
                "heatmap",
                objective_heatmap(sweep.ok, axes[0], axes[1], sweep.objective, sweep.maximize),
            )
        )
    blocks += [
        Chart(f"scatter-{i}", parameter_scatter(sweep.ok, name, sweep.objective), wide=False)
        for i, name in enumerate(sweep.parameters)
    ]
    selection = sweep.directory / OVERFITTING
    if selection.is_file():
        blocks.append(
            Html("overfitting", "Can the best point be trusted?", overfitting_block(selection))
        )
    blocks.append(Html("provenance", "What produced this sweep", _provenance(manifest)))
    return render_page(title, subtitle, blocks)


def top_table(sweep: Sweep, top: int, runs: Path, page_dir: Path) -> str:
    best = sweep.ranked().head(top)
    stats = [s for s in (sweep.objective, *SHOWN_STATS) if s in best.columns]
    stats = list(dict.fromkeys(stats))
    header = [
        "rank",
        *(p.removeprefix(PARAM_PREFIX) for p in sweep.parameters),
        "seed",
        *stats,
        "run",
    ]
    rows = []
    for rank, row in enumerate(best.iter_rows(named=True), start=1):
        cells = [str(rank)]
        cells += [html.escape(format_value(row[p])) for p in sweep.parameters]
        cells.append(html.escape(str(row.get("seed", ""))))
        cells += [html.escape(format_value(row[s])) for s in stats]
        cells.append(run_link(str(row.get("run_id", "")), runs, page_dir))
        rows.append(cells)
    return grid_table(header, rows)


def run_link(run_id: str, runs: Path, page_dir: Path) -> str:
    """A link to the point's run report, generated now if its run directory is there without one."""
    directory = runs / run_id
    if not run_id or not (directory / "manifest.json").is_file():
        return f"<code>{html.escape(run_id)}</code> (no run directory)"
    report = directory / REPORT
    if not report.is_file():
        write_run_report(directory)
    href = Path(os.path.relpath(report.resolve(), page_dir.resolve())).as_posix()
    return f'<a href="{html.escape(href)}"><code>{html.escape(run_id)}</code></a>'


def overfitting_block(path: Path) -> str:
    """The overfitting statistics (`overfitting.json`) and their verdict."""
    found = read_json(path)
    period = found.get("period_seconds")
    unit = f"{period / 3600:g} h" if isinstance(period, int | float) and period else "period"
    rows = [
        ("verdict", found.get("verdict", "")),
        ("trials (distinct successful runs)", found.get("trials")),
        (f"periods of {unit} in the best point's returns", found.get("periods")),
        ("PBO, probability of backtest overfitting (CSCV, 16 blocks)", found.get("pbo")),
        ("DSR, deflated Sharpe ratio", found.get("dsr")),
        ("PSR, probabilistic Sharpe ratio (vs 0)", found.get("psr")),
        ("best Sharpe ratio per period", found.get("sharpe")),
        (
            "expected best Sharpe ratio of as many trials without skill",
            found.get("expected_max_sharpe"),
        ),
        ("minimum track record length (periods, 95%)", found.get("min_track_record")),
        ("skewness, kurtosis of the best point's returns", _pair(found)),
    ]
    shown = [(name, "n/a" if value is None else value) for name, value in rows]
    return key_value_table(shown) + note(
        "Formulas and references: docs/optimization.md (Bailey & López de Prado 2012, 2014; "
        "Bailey, Borwein, López de Prado & Zhu 2015)."
    )


def _pair(found: Mapping[str, Any]) -> str | None:
    skew, kurt = found.get("skewness"), found.get("kurtosis")
    if skew is None or kurt is None:
        return None
    return f"{format_value(skew)}, {format_value(kurt)}"


def _failure_note(sweep: Sweep) -> str:
    failed = sweep.results.filter(pl.col("status") != "ok")
    if failed.height == 0:
        return "Some points have no value of the objective (NaN) and are left out of the charts."
    first = failed.row(0, named=True)
    return (
        f"{failed.height} point(s) failed and are left out of the charts; the first "
        f"(index {first.get('index')}): {first.get('error')}"
    )


def _provenance(manifest: Mapping[str, Any]) -> str:
    if not manifest:
        return note("No manifest.json next to results.parquet.")
    fields = (
        "sweep_id",
        "name",
        "seed",
        "points",
        "ok",
        "failed",
        "digest",
        "git_sha",
        "package_version",
        "code_sha256",
        "started_at",
        "finished_at",
    )
    rows = [(name, manifest[name]) for name in fields if manifest.get(name) is not None]
    data = [
        [
            html.escape(str(d.get("symbol", ""))),
            f"<code>{html.escape(str(d.get('path', '')))}</code>",
            f"<code>{html.escape(str(d.get('sha256', '')))}</code>",
        ]
        for d in manifest.get("data", [])
    ]
    return key_value_table(rows) + "<h2>Data</h2>" + grid_table(["symbol", "path", "sha256"], data)
