"""`compare RUN_A RUN_B`: the statistics side by side with their differences, the equity curves
overlaid, and which inputs differ (config keys, data hashes, code version), in the terminal and as an
HTML page.

"Why do these two runs differ?" is answered by the inputs section first: when config, data and code
are equal and the digests are not, the runs are not reproducible, and the page says so.
"""

from __future__ import annotations

import html
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from bokeh.models import HoverTool, NumeralTickFormatter

from backtester.report.data import RunData
from backtester.report.figures import line_source, time_figure, time_range
from backtester.report.html import (
    Chart,
    Html,
    format_value,
    grid_table,
    note,
    render_page,
    write_html,
)
from backtester.report.run_report import load_run

CODE_KEYS = ("git_sha", "git_dirty", "package_version", "code_sha256", "strategy_sha256", "python")
COLORS = ("#1f4e9c", "#e6550d")


@dataclass(frozen=True)
class Difference:
    section: str  # "config", "data", "code", "seed", "result"
    key: str
    a: Any
    b: Any


def compare_runs(run_a: str | Path, run_b: str | Path) -> tuple[RunData, RunData, list[Difference]]:
    a, b = load_run(Path(run_a), with_bars=False), load_run(Path(run_b), with_bars=False)
    return a, b, input_differences(Path(run_a), a, Path(run_b), b)


def input_differences(dir_a: Path, a: RunData, dir_b: Path, b: RunData) -> list[Difference]:
    found: list[Difference] = []
    config_a, config_b = _config(dir_a), _config(dir_b)
    for key in sorted(config_a.keys() | config_b.keys()):
        if config_a.get(key) != config_b.get(key):
            found.append(Difference("config", key, config_a.get(key), config_b.get(key)))
    ma, mb = a.manifest or {}, b.manifest or {}
    if ma.get("seed") != mb.get("seed") and "seed" not in config_a.keys() | config_b.keys():
        found.append(Difference("seed", "seed", ma.get("seed"), mb.get("seed")))
    data_a, data_b = _data(ma), _data(mb)
    for symbol in sorted(data_a.keys() | data_b.keys()):
        for field in ("path", "sha256", "rows", "first_ts", "last_ts"):
            va = data_a.get(symbol, {}).get(field)
            vb = data_b.get(symbol, {}).get(field)
            if va != vb:
                found.append(Difference("data", f"{symbol} {field}", va, vb))
    for key in CODE_KEYS:
        if ma.get(key) != mb.get(key):
            found.append(Difference("code", key, ma.get(key), mb.get(key)))
    deps_a, deps_b = ma.get("dependencies") or {}, mb.get("dependencies") or {}
    for name in sorted(deps_a.keys() | deps_b.keys()):
        if deps_a.get(name) != deps_b.get(name):
            found.append(
                Difference("code", f"dependency {name}", deps_a.get(name), deps_b.get(name))
            )
    if ma.get("digest") != mb.get("digest"):
        found.append(Difference("result", "digest", ma.get("digest"), mb.get("digest")))
    return found


def _config(directory: Path) -> dict[str, Any]:
    path = directory / "config.toml"
    if not path.is_file():
        return {}
    return dict(_flatten(tomllib.loads(path.read_text(encoding="utf-8"))))


def _flatten(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Plain tables as dotted key paths (`strategy.params.fast`, `data[0].path`)."""
    if isinstance(node, dict):
        items: list[tuple[str, Any]] = []
        for key, value in node.items():
            items += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return items
    if isinstance(node, list) and node and all(isinstance(v, dict) for v in node):
        return [item for i, v in enumerate(node) for item in _flatten(v, f"{prefix}[{i}]")]
    return [(prefix, node)]


def _data(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(entry.get("symbol")): entry for entry in manifest.get("data", [])}


def verdict(differences: list[Difference]) -> str:
    inputs = [d for d in differences if d.section != "result"]
    digests_differ = any(d.section == "result" for d in differences)
    if not inputs and not digests_differ:
        return "Same inputs, same digest: the two runs are identical."
    if not inputs:
        return "Same config, data and code, but different digests: the runs are not reproducible."
    sections = sorted({d.section for d in inputs})
    outcome = "different digests" if digests_differ else "the same digest"
    return f"The inputs differ in {', '.join(sections)}; the results have {outcome}."


def stats_rows(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, Any, Any, Any]]:
    """(stat, A, B, B - A) for every stat of either run; the difference only for two numbers."""
    rows = []
    for key in dict.fromkeys([*a, *b]):
        va, vb = a.get(key), b.get(key)
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (va, vb))
        rows.append((key, va, vb, vb - va if numbers else None))  # type: ignore[operator]
    return rows


def format_terminal(a: RunData, b: RunData, differences: list[Difference]) -> str:
    name_a, name_b = _name(a), _name(b)
    rows = stats_rows(a.stats, b.stats)
    width = max(len(r[0]) for r in rows) if rows else 10
    lines = [f"{'stat':<{width}}  {'A':>22}  {'B':>22}  {'B - A':>16}"]
    for key, va, vb, diff in rows:
        shown = "" if diff is None else _signed(diff)
        lines.append(f"{key:<{width}}  {_cell(va):>22}  {_cell(vb):>22}  {shown:>16}")
    lines.append("")
    lines.append(f"A = {name_a}")
    lines.append(f"B = {name_b}")
    if differences:
        lines.append("inputs that differ:")
        lines += [f"  {d.section:<6}  {d.key}: {d.a!r} -> {d.b!r}" for d in differences]
    lines.append(verdict(differences))
    return "\n".join(lines)


def compare_page(a: RunData, b: RunData, differences: list[Difference]) -> str:
    name_a, name_b = _name(a), _name(b)
    stats_table = grid_table(
        ["stat", f"A {name_a}", f"B {name_b}", "B - A"],
        [
            [html.escape(k), _cell(va), _cell(vb), "" if d is None else _signed_html(d)]
            for k, va, vb, d in stats_rows(a.stats, b.stats)
        ],
    )
    inputs = grid_table(
        ["section", "key", "A", "B"],
        [
            [
                d.section,
                html.escape(d.key),
                f"<code>{html.escape(repr(d.a))}</code>",
                f"<code>{html.escape(repr(d.b))}</code>",
            ]
            for d in differences
        ],
    )
    blocks: list[Chart | Html] = [
        Html("verdict", "", note(verdict(differences))),
        Html("inputs", "Inputs that differ", inputs if differences else "<p>None.</p>"),
        Chart("equity-overlay", equity_overlay(a, b)),
        Html("stats", "Statistics", stats_table),
    ]
    return render_page(f"Compare {name_a} and {name_b}", "A against B", blocks)


def equity_overlay(a: RunData, b: RunData) -> Any:
    """Both equity curves on one time axis spanning both runs."""
    both = pl.concat([a.equity.select("ts"), b.equity.select("ts")]).unique().sort("ts")
    fig = time_figure("Equity", time_range(both), 320, "equity")
    fig.yaxis.formatter = NumeralTickFormatter(format="0,0")
    for run, label, color in ((a, "A", COLORS[0]), (b, "B", COLORS[1])):
        fig.line(
            "x",
            "equity",
            source=line_source(run.equity, "equity"),
            color=color,
            line_width=2,
            legend_label=f"{label} {_name(run)}",
            name=f"equity-{label}",
        )
    fig.add_tools(
        HoverTool(
            tooltips=[("time", "@x{%F %H:%M}"), ("equity", "@equity{0,0.00}")],
            formatters={"@x": "datetime"},
        )
    )
    fig.legend.location = "top_left"
    return fig


def write_compare(
    run_a: str | Path, run_b: str | Path, output: str | Path | None = None
) -> tuple[Path, str]:
    a, b, differences = compare_runs(run_a, run_b)
    target = Path(output) if output else Path(run_a).parent / f"compare_{_id(a)}_{_id(b)}.html"
    write_html(target, compare_page(a, b, differences))
    return target, format_terminal(a, b, differences)


def _id(run: RunData) -> str:
    return str((run.manifest or {}).get("run_id", "run"))


def _name(run: RunData) -> str:
    return run.title


def _cell(value: Any) -> str:
    return "" if value is None else format_value(value)


def _signed(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return "0" if value == 0 else f"{value:+,.4f}" if isinstance(value, float) else f"{value:+,}"


def _signed_html(value: Any) -> str:
    css = "pos" if value > 0 else "neg" if value < 0 else ""
    return f'<span class="{css}">{html.escape(_signed(value))}</span>'
