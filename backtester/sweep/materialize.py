"""Full run directories for a sweep's best points (`sweep --materialize N`), so the sweep report links
to their run reports and `verify` and `compare` take them.

A point's run config is an ordinary run config: it is run again here exactly as `python -m
backtester run` runs it (`runs.runner.replay`) and written to `<output_dir>/<run_id>/` with its
manifest (`runs.runner.write_run`). The run id must be the sweep row's and so must the digest, or
the sweep's own result would be in doubt. A run directory already there with the row's digest is
kept as it is, so a sweep read back does not run its best points again.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import polars as pl
import structlog

from backtester.manifest import read_manifest, utc_now
from backtester.runs.artifacts import MANIFEST
from backtester.runs.runner import replay, write_run
from backtester.sweep.plan import SweepPlan
from backtester.sweep.results import best

log = structlog.get_logger("backtester.sweep.materialize")


class MaterializeError(RuntimeError):
    """A point run again does not give the run the sweep recorded."""


def materialize(plan: SweepPlan, table: pl.DataFrame, count: int) -> list[Path]:
    """The run directories of the best `count` successful runs by the ranking objective, best
    first (two points that are one run count once)."""
    if count <= 0:
        return []
    goal = plan.config.ranking()
    ranked = best(table, goal.stat, goal.direction, table.height).unique(
        "run_id", keep="first", maintain_order=True
    )
    written: list[Path] = []
    for row in ranked.head(count).iter_rows(named=True):
        written.append(_materialize_point(plan, int(row["index"]), str(row["digest"])))
    return written


def _materialize_point(plan: SweepPlan, index: int, digest: str) -> Path:
    run = plan.runs[index]
    parent = Path(plan.config.output_dir)
    directory = parent / run.run_id
    if _recorded_digest(directory / MANIFEST) == digest:
        return directory
    config = msgspec.structs.replace(run.spec, output_dir=str(parent))
    started_at = utc_now()
    found = replay(config, f"sweep {plan.sweep_id} point {index}")
    if found.run_id != run.run_id or found.result.digest != digest:
        raise MaterializeError(
            f"sweep {plan.sweep_id} point {index} run again gives run {found.run_id} digest "
            f"{found.result.digest[:16]}, but the sweep recorded run {run.run_id} digest "
            f"{digest[:16]}: the code or the data changed since the sweep ran"
        )
    outcome = write_run(found, started_at)
    log.info("point.materialized", index=index, run_id=run.run_id, directory=str(directory))
    return outcome.directory


def _recorded_digest(path: Path) -> str | None:
    try:
        return read_manifest(path).digest
    except (OSError, ValueError):
        return None
