"""A run's tearsheet: the stats, the time-linked charts, the distributions, and what produced the run.
The same charts make the notebook figure (`RunResult.plot`) and the HTML report."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from backtester.report.data import RunData
from backtester.report.distributions import duration_scatter, monthly_heatmap, pnl_histogram
from backtester.report.exits import denial_note, exits_table
from backtester.report.figures import (
    drawdown_figure,
    equity_figure,
    exposure_figure,
    funding_figure,
    price_figure,
    time_range,
)
from backtester.report.html import (
    Block,
    Chart,
    Html,
    grid_table,
    key_value_table,
    note,
    render_page,
)

# Shown green or red by sign in the stats table.
SIGNED_STATS = frozenset(
    {
        "total_return_pct",
        "buy_and_hold_return_pct",
        "cagr_pct",
        "sharpe",
        "sortino",
        "calmar",
        "max_drawdown_pct",
        "best_trade_pct",
        "worst_trade_pct",
        "avg_trade_pct",
        "expectancy",
    }
)


def run_charts(data: RunData) -> list[Chart]:
    """Every chart of the report, in page order; the time charts share one x range."""
    x_range = time_range(data.equity)
    charts = [
        Chart(
            f"price-{index}",
            price_figure(
                symbol, bars, data.fills, data.orders, data.trades, x_range, data.overlays
            ),
        )
        for index, (symbol, bars) in enumerate(data.bars.items())
    ]
    benchmark = next(iter(data.bars.values()), None)
    initial = float(data.stats["initial_equity"])
    charts += [
        Chart("equity", equity_figure(data.equity, data.stats, x_range, benchmark)),
        Chart("drawdown", drawdown_figure(data.equity, data.stats, x_range)),
        Chart("exposure", exposure_figure(data.equity, data.stats, x_range)),
    ]
    if "funding" in data.equity.columns and bool((data.equity["funding"] != 0.0).any()):
        charts.append(Chart("funding", funding_figure(data.equity, x_range)))
    charts += [
        Chart("monthly-returns", monthly_heatmap(data.equity, initial)),
        Chart("trade-returns", pnl_histogram(data.trades), wide=False),
        Chart("trade-durations", duration_scatter(data.trades), wide=False),
    ]
    return charts


def run_page(data: RunData) -> str:
    stats = data.stats
    subtitle = (
        f"{stats.get('start', '')} to {stats.get('end', '')}, {stats.get('bars', 0):,} bars, "
        f"{stats.get('trades', 0):,} closed trades"
    )
    denied = denial_note(stats)
    notes = (*data.notes, denied) if denied is not None else data.notes
    blocks: list[Block] = [Html(f"note-{i}", "", note(text)) for i, text in enumerate(notes)]
    blocks.append(Html("stats", "Statistics", stats_table(stats)))
    blocks += run_charts(data)
    exits = exits_table(data.trades)
    if exits is not None:
        blocks.append(Html("exits", "How trades ended", exits))
    blocks.append(Html("provenance", "What produced this run", provenance(data)))
    return render_page(data.title, subtitle, blocks)


def stats_table(stats: Mapping[str, Any]) -> str:
    rows = list(stats.items())
    per_column = max(-(-len(rows) // 3), 1)
    tables = [
        key_value_table(rows[i : i + per_column], SIGNED_STATS)
        for i in range(0, len(rows), per_column)
    ]
    return '<div class="cols">' + "".join(tables) + "</div>"


def provenance(data: RunData) -> str:
    """The manifest in brief (ids, code version, seed, data hashes, digest); for a result that never
    went through a run directory, what the result itself knows."""
    manifest = data.manifest
    if manifest is None:
        return key_value_table((k, str(v)) for k, v in data.about.items()) + note(
            "Not from a run directory, so there is no manifest: run it from a config to record "
            "the code version and data hashes."
        )
    git = manifest.get("git_sha") or "not a git checkout"
    if manifest.get("git_dirty"):
        git = f"{git} (uncommitted changes)"
    fields = [
        ("run_id", manifest.get("run_id")),
        ("config_id", manifest.get("config_id")),
        ("strategy", manifest.get("strategy")),
        ("seed", manifest.get("seed")),
        ("git SHA", git),
        ("package version", manifest.get("package_version")),
        ("code sha256", manifest.get("code_sha256")),
        ("digest", manifest.get("digest")),
        ("started at", manifest.get("started_at")),
        ("finished at", manifest.get("finished_at")),
        ("python", manifest.get("python")),
    ]
    shown = [(name, str(value)) for name, value in fields if value is not None]
    rows = [
        [
            html.escape(str(entry.get("symbol", ""))),
            f"<code>{html.escape(str(entry.get('path', '')))}</code>",
            f"<code>{html.escape(str(entry.get('sha256', '')))}</code>",
            f"{int(entry.get('rows', 0)):,}",
            html.escape(f"{entry.get('first_ts', '')} to {entry.get('last_ts', '')}"),
        ]
        for entry in manifest.get("data", [])
    ]
    data_table = grid_table(["symbol", "path", "sha256", "rows", "span"], rows)
    return key_value_table(shown) + "<h2>Data</h2>" + data_table
