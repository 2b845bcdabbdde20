"""`Backtest.walk_forward`: walk-forward validation from a notebook, run by the sweep machinery.

The backtest and its parameter space become a sweep config with a `[walk_forward]` section, as
`Backtest.optimize` builds one, and run as `python -m backtester sweep` runs that config
(`sweep/walkforward.py`): the same folds, in-sample sweeps, out-of-sample runs and digest. A fold
whose in-sample sweep has no point to run out of sample raises `FoldFailed`, as the CLI ends with
its message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from backtester.optimize import (
    Constraint,
    Method,
    keep_of,
    local_or_nats,
    objectives_of,
    progress_stream,
    run_async,
    space_of,
    sweep_raw,
)
from backtester.sweep.config import decode_sweep_config
from backtester.sweep.walkforward import FoldFailed, run_walk_forward

__all__ = ["FoldFailed", "WalkForwardResult", "walk_forward"]

if TYPE_CHECKING:
    from backtester.backtest import Backtest


@dataclass(frozen=True)
class WalkForwardResult:
    """What `Backtest.walk_forward` found. `folds`: one row per fold (windows, the best in-sample
    point, its out-of-sample run and statistics); `equity`: the stitched out-of-sample equity;
    `stats`: its statistics; `runs`: the out-of-sample run directories."""

    folds: pl.DataFrame
    equity: pl.DataFrame
    stats: dict[str, Any]
    walk_forward_id: str
    digest: str
    directory: Path
    runs: list[Path]

    def __repr__(self) -> str:
        ret = self.stats.get("total_return_pct")
        sharpe = self.stats.get("sharpe")
        return "\n".join(
            [
                f"WalkForward {self.walk_forward_id} ({self.folds.height} folds)",
                f"out of sample, stitched: total_return_pct = {ret}, sharpe = {sharpe}",
                f"results: {self.directory}",
            ]
        )

    def report(self) -> Path:
        """Write the walk-forward's HTML page (`report.html` in its directory) and return its path."""
        from backtester.report.walkforward_report import (  # noqa: PLC0415  (bokeh on demand)
            write_walk_forward_report,
        )

        return write_walk_forward_report(self.directory)


def walk_forward(
    bt: Backtest,
    *,
    train: str,
    test: str,
    step: str | None = None,
    anchored: bool = False,
    maximize: str | Sequence[str] | None = None,
    minimize: str | Sequence[str] | None = None,
    method: Method = "grid",
    n_trials: int | None = None,
    batch: int = 8,
    startup: int = 10,
    population: int | None = None,
    constraint: Constraint = None,
    workers: int | None = None,
    seed: int = 0,
    nats: str | None = None,
    out: str | Path = "runs",
    **space: Any,
) -> WalkForwardResult:
    objectives = objectives_of(maximize, minimize)
    raw = sweep_raw(bt, objectives, seed, out, top=10)
    raw |= space_of(bt, out, method, space, n_trials, batch, startup, population)
    raw["walk_forward"] = {"train": train, "test": test, "step": step, "anchored": anchored}
    keep, identity = keep_of(constraint, raw)
    cfg = decode_sweep_config(raw, "walk_forward")
    settings = local_or_nats(nats, workers, 0)
    found = run_async(
        run_walk_forward(cfg, settings, keep=keep, identity=identity, stream=progress_stream())
    )
    summary = found.summary
    runs = [Path(out) / r for r in found.folds["run_id"].to_list()]
    return WalkForwardResult(
        folds=found.folds,
        equity=found.equity,
        stats=summary.stats,
        walk_forward_id=summary.walk_forward_id,
        digest=summary.digest,
        directory=found.directory,
        runs=runs,
    )
