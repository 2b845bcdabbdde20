"""`report runs/<run_id>`: read a run directory (manifest.json, stats.json, the frames as Parquet) and
write its `report.html`.

The price chart needs the bars, which the run directory does not copy: they are re-read from the path
the manifest names and accepted only if their sha256 still matches. A missing or changed file costs the
price chart, not the report; the page says which and why.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
import polars as pl

from backtester.data.bars import DataError, load_bars
from backtester.metrics.stats import Stats
from backtester.report.data import RunData
from backtester.report.html import write_html
from backtester.report.overlays import overlays_for
from backtester.report.run_page import run_page

REPORT = "report.html"
FRAMES = ("trades", "fills", "orders", "equity")
# stats.json writes the floats JSON cannot hold as these strings.
_NON_FINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


class RunDirError(ValueError):
    """The directory is not a readable run directory; the message names the missing piece."""


def write_run_report(
    run_dir: str | Path, output: str | Path | None = None, overlays: Iterable[str] = ()
) -> Path:
    """The run's report.html; `overlays` adds indicator overlays to those its strategy declares."""
    directory = Path(run_dir)
    data = load_run(directory, overlays=overlays)
    return write_html(Path(output) if output else directory / REPORT, run_page(data))


def load_run(directory: Path, *, with_bars: bool = True, overlays: Iterable[str] = ()) -> RunData:
    manifest = read_json(directory / "manifest.json")
    stats = read_stats(directory / "stats.json")
    frames = {name: _read_frame(directory, name) for name in FRAMES}
    bars: dict[str, pl.DataFrame] = {}
    notes: list[str] = []
    if with_bars:
        bars, notes = load_run_bars(manifest, directory)
    run_id = manifest.get("run_id", directory.name)
    strategy = str(manifest.get("strategy", ""))
    return RunData(
        title=f"{manifest.get('strategy', 'run')} {run_id}",
        stats=stats,
        trades=frames["trades"],
        fills=frames["fills"],
        orders=frames["orders"],
        equity=frames["equity"],
        bars=bars,
        manifest=manifest,
        notes=tuple(notes),
        overlays=overlays_for(strategy, strategy_params(directory), overlays),
    )


def strategy_params(directory: Path) -> dict[str, Any]:
    """The strategy parameters of the run's decoded config (empty if it has none)."""
    path = directory / "config.toml"
    if not path.is_file():
        return {}
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RunDirError(f"{path}: not valid TOML: {exc}") from None
    params = config.get("strategy", {}).get("params", {})
    return dict(params) if isinstance(params, dict) else {}


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RunDirError(f"{path.parent}: not a run directory (no {path.name})")
    try:
        document = msgspec.json.decode(path.read_bytes())
    except msgspec.DecodeError as exc:
        raise RunDirError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RunDirError(f"{path}: expected a JSON object")
    return document


def read_stats(path: Path) -> Stats:
    return Stats(
        {
            key: _NON_FINITE.get(value, value) if isinstance(value, str) else value
            for key, value in read_json(path).items()
        }
    )


def _read_frame(directory: Path, name: str) -> pl.DataFrame:
    path = directory / f"{name}.parquet"
    if not path.is_file():
        raise RunDirError(f"{directory}: not a run directory (no {path.name})")
    return pl.read_parquet(path)


def load_run_bars(
    manifest: dict[str, Any], run_dir: Path
) -> tuple[dict[str, pl.DataFrame], list[str]]:
    """Bars per symbol for the entries whose file still hashes as recorded, and a note for each other."""
    bars: dict[str, pl.DataFrame] = {}
    notes: list[str] = []
    for entry in manifest.get("data", []):
        symbol = str(entry.get("symbol", "?"))
        frame, problem = _entry_bars(entry, run_dir)
        if frame is not None:
            bars[symbol] = frame
        else:
            notes.append(f"No price chart for {symbol}: {problem}.")
    return bars, notes


def _entry_bars(entry: dict[str, Any], run_dir: Path) -> tuple[pl.DataFrame | None, str]:
    if entry.get("source", "file") != "file":
        return (
            None,
            f"its data came from a {entry.get('source')} source, which reports do not re-read",
        )
    recorded = str(entry.get("path", ""))
    path = _locate(recorded, run_dir)
    if path is None:
        return None, f"the data file {recorded} is not found"
    actual = _sha256(path)
    if actual != entry.get("sha256"):
        return None, (
            f"the data file {recorded} has changed since the run (sha256 {actual[:16]}..., the run "
            f"recorded {str(entry.get('sha256'))[:16]}...)"
        )
    try:
        bars = load_bars(path, repair=entry.get("repair") is not None, name=recorded)
    except DataError as exc:
        return None, f"the data file no longer loads ({exc})"
    return bars.frame, ""


def _locate(recorded: str, run_dir: Path) -> Path | None:
    """A relative data path is relative to where the run was started: normally the project root,
    which is two levels above `runs/<run_id>`; the current directory is tried first."""
    candidates = [Path(recorded)]
    if not Path(recorded).is_absolute():
        candidates.append(run_dir.resolve().parent.parent / recorded)
    return next((path for path in candidates if path.is_file()), None)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
