"""One self-contained HTML page: BokehJS and the chart data inlined, no request leaves the file, so a
report opens offline, attached to an email or years later. Written atomically (temp file + rename)."""

from __future__ import annotations

import html
import math
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bokeh.embed import components
from bokeh.embed.bundle import bundle_for_objs_and_resources
from bokeh.resources import INLINE


@dataclass(frozen=True)
class Chart:
    """A Bokeh model shown in a container marked `data-chart=<key>`; `wide` spans the page."""

    key: str
    model: Any
    wide: bool = True


@dataclass(frozen=True)
class Html:
    """A block of already-escaped HTML (a table, a note)."""

    key: str
    title: str
    body: str
    wide: bool = True


Block = Chart | Html

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d1d1f;
       background: #f5f6f8; }
header { background: #17233b; color: #fff; padding: 14px 24px; }
header h1 { margin: 0; font-size: 20px; font-weight: 600; }
header p { margin: 4px 0 0; color: #c5cee0; font-size: 13px; }
main { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 14px; padding: 14px 24px; }
section { background: #fff; border: 1px solid #dfe3ea; border-radius: 6px; padding: 10px 12px;
          min-width: 0; }
section.wide { grid-column: 1 / -1; }
section h2 { font-size: 15px; margin: 0 0 8px; }
table.kv { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table.kv th, table.kv td { padding: 3px 8px; border-bottom: 1px solid #eef0f4; text-align: left;
                           vertical-align: top; }
table.kv td.num { text-align: right; white-space: nowrap; }
table.kv th { font-weight: 500; color: #4a5568; white-space: nowrap; }
table.kv thead th { color: #1d1d1f; font-weight: 600; border-bottom: 2px solid #dfe3ea; }
.cols { columns: 3 300px; column-gap: 24px; }
.cols table { break-inside: auto; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
.note { background: #fff7e0; border: 1px solid #f0d68a; border-radius: 6px; padding: 8px 12px; }
.pos { color: #1b7e34; } .neg { color: #c62828; }
a { color: #1f4e9c; }
"""


def render_page(title: str, subtitle: str, blocks: Sequence[Block]) -> str:
    charts = {block.key: block.model for block in blocks if isinstance(block, Chart)}
    script, divs = components(charts) if charts else ("", {})
    bundle = bundle_for_objs_and_resources(list(charts.values()), INLINE)
    if bundle.js_files or bundle.css_files:
        raise RuntimeError("the report would load resources from outside the file")
    js, css = bundle
    sections = "\n".join(_section(block, divs) for block in blocks)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>{_STYLE}</style>\n{css}\n{js}\n"
        "</head>\n<body>\n"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>\n"
        f"<main>\n{sections}\n</main>\n{script}\n</body>\n</html>\n"
    )


def _section(block: Block, divs: Mapping[str, str]) -> str:
    wide = ' class="wide"' if block.wide else ""
    key = html.escape(block.key)
    if isinstance(block, Chart):
        return f'<section{wide} data-chart="{key}">{divs[block.key]}</section>'
    heading = f"<h2>{html.escape(block.title)}</h2>" if block.title else ""
    return f'<section{wide} data-block="{key}">{heading}{block.body}</section>'


def write_html(path: Path, text: str) -> Path:
    """Write through a temporary file in the same directory, then rename: a reader (or a browser
    reloading) never sees half a report, and a failed write leaves the previous one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:,.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def key_value_table(rows: Iterable[tuple[str, Any]], signed: Collection[str] = ()) -> str:
    """Rows of name and value; numbers right-aligned, those named in `signed` coloured by sign."""
    cells = []
    for name, value in rows:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        classes = ["num"] if number else []
        if name in signed and number and math.isfinite(value) and value != 0:
            classes.append("pos" if value > 0 else "neg")
        attr = f' class="{" ".join(classes)}"' if classes else ""
        shown = html.escape(format_value(value))
        cells.append(f"<tr><th>{html.escape(name)}</th><td{attr}>{shown}</td></tr>")
    return f'<table class="kv">{"".join(cells)}</table>'


def grid_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table of already-escaped cells under an escaped header."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="kv"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'
