"""A sweep's directory `<output_dir>/sweeps/<sweep_id>/`: the journal of results as they arrive, then
`results.parquet` (one row per point, in point order) and `manifest.json`.

The journal makes a sweep resumable: each accepted result is appended (length-prefixed msgpack) and
flushed before the next is read, so a coordinator killed at any moment loses at most the record it
was writing, which a resume detects as a truncated tail and ignores.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import math
import os
import platform
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import structlog

from backtester.metrics.overfitting import period_width
from backtester.sweep.config import SweepConfig, decode_sweep_config
from backtester.sweep.plan import DataFile, SweepPlan
from backtester.sweep.selection import OVERFITTING, Selection, assess
from backtester.sweep.spec import MalformedMessage, RunCompleted, RunFailed, RunReport
from backtester.sweep.spec import decode_report as _decode_report
from backtester.sweep.spec import encode as _encode

log = structlog.get_logger("backtester.sweep.results")

JOURNAL = "journal.bin"
CONFIG = "sweep.json"
RESULTS = "results.parquet"
MANIFEST = "manifest.json"
RETURNS = "returns.parquet"
MANIFEST_VERSION = 1
LOCK = ".lock"
_FIXED = ("index", "seed", "run_id", "status", "digest", "error")


class SweepExistsError(ValueError):
    pass


class SweepBusy(ValueError):
    """Another coordinator is running this very sweep."""


@contextlib.contextmanager
def sweep_lock(plan: SweepPlan) -> Iterator[None]:
    """Hold the sweep directory for one coordinator: a second one started at the same time would
    run every point again and race the first for the results file. The OS drops the lock if the
    holder dies, so a killed sweep can be resumed at once."""
    directory = plan.output_dir
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / LOCK).open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise SweepBusy(
                f"sweep {plan.sweep_id} is already running (process {holder}, {directory}): "
                "wait for it to finish, or stop it and continue with --resume"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class Execution(msgspec.Struct, frozen=True):
    """How the sweep ran; informational, not part of any id or digest."""

    workers: int
    nats: str
    ack_wait: float
    max_deliver: int


class SweepManifest(msgspec.Struct, frozen=True, kw_only=True):
    manifest_version: int = MANIFEST_VERSION
    sweep_id: str
    name: str
    config_sha256: str
    seed: int
    objective: dict[str, str]
    points: int
    ok: int
    failed: int
    digest: str
    results_sha256: str
    git_sha: str | None
    git_dirty: bool | None
    package_version: str
    code_sha256: str
    strategy_sha256: str | None
    data: list[DataFile]
    python: str
    platform: str
    execution: Execution
    started_at: str
    finished_at: str


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = path.open("ab")

    def append(self, report: RunReport) -> None:
        payload = _encode(report)
        self._handle.write(len(payload).to_bytes(4, "little") + payload)
        self._handle.flush()

    def close(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()


def read_journal(path: Path) -> list[RunReport]:
    if not path.is_file():
        return []
    data = path.read_bytes()
    reports: list[RunReport] = []
    at = 0
    while at + 4 <= len(data):
        size = int.from_bytes(data[at : at + 4], "little")
        if at + 4 + size > len(data):
            break
        try:
            reports.append(_decode_report(data[at + 4 : at + 4 + size]))
        except MalformedMessage as exc:
            log.warning("journal.skipped", reason=str(exc), offset=at)
        at += 4 + size
    if at != len(data):
        log.warning("journal.truncated", bytes_ignored=len(data) - at, file=str(path))
    return reports


def prepare_directory(plan: SweepPlan, *, resume: bool) -> Path:
    """Create the sweep directory, or check a resumed one; a sweep's results are never overwritten."""
    directory = plan.output_dir
    earlier = read_journal(directory / JOURNAL)
    if not resume and earlier:
        raise SweepExistsError(
            f"sweep {plan.sweep_id} already has {len(earlier)} result(s) in {directory}: "
            f"continue it with --resume {plan.sweep_id}, or delete the directory to start over"
        )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG).write_bytes(msgspec.json.encode(plan.config) + b"\n")
    return directory


def stored_config(output_dir: str, sweep_id: str) -> SweepConfig:
    """The config of a sweep, or of a walk-forward (`walkforward/<id>/`), by its id."""
    path = Path(output_dir) / "sweeps" / sweep_id / CONFIG
    if not path.is_file():
        path = Path(output_dir) / "walkforward" / sweep_id / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"no sweep {sweep_id} under {Path(output_dir) / 'sweeps'}")
    return decode_sweep_config(msgspec.json.decode(path.read_bytes()), str(path))


def sweep_digest(plan: SweepPlan, reports: dict[int, RunReport]) -> str:
    """sha256 over the per-run digests in point order ("failed" for a point that failed)."""
    digest = hashlib.sha256()
    for run in plan.runs:
        report = reports[run.index]
        digest.update((report.digest if isinstance(report, RunCompleted) else "failed").encode())
        digest.update(b"\n")
    return digest.hexdigest()


def results_table(plan: SweepPlan, reports: dict[int, RunReport]) -> pl.DataFrame:
    """One row per point in point order: its parameters, seed, run id, outcome and every statistic.
    Nothing about who ran it or when, so any number of workers gives the same table."""
    rows = [reports[run.index] for run in plan.runs]
    columns: dict[str, pl.Series] = {
        "index": pl.Series([r.index for r in plan.runs], dtype=pl.Int64),
    }
    for name in plan.config.parameters():
        columns[f"param.{name}"] = _series([r.params[name] for r in plan.runs])
    columns["seed"] = pl.Series([r.seed for r in plan.runs], dtype=pl.UInt64)
    columns["run_id"] = pl.Series([r.run_id for r in plan.runs], dtype=pl.String)
    columns["status"] = pl.Series(
        ["ok" if isinstance(r, RunCompleted) else "failed" for r in rows], dtype=pl.String
    )
    columns["digest"] = pl.Series(
        [r.digest if isinstance(r, RunCompleted) else None for r in rows], dtype=pl.String
    )
    columns["error"] = pl.Series(
        [r.error if isinstance(r, RunFailed) else None for r in rows], dtype=pl.String
    )
    keys: list[str] = []
    for report in rows:
        if isinstance(report, RunCompleted):
            keys.extend(k for k in report.stats if k not in keys)
    for key in keys:
        name = key if key not in columns else f"stat.{key}"
        columns[name] = _series(
            [r.stats.get(key) if isinstance(r, RunCompleted) else None for r in rows]
        )
    return pl.DataFrame(columns)


def _series(values: list[Any]) -> pl.Series:
    try:
        return pl.Series(values, strict=False)
    except (TypeError, pl.exceptions.PolarsError):
        return pl.Series([None if v is None else str(v) for v in values], dtype=pl.String)


def best(table: pl.DataFrame, stat: str, direction: str, n: int) -> pl.DataFrame:
    """The top `n` successful points by the objective; NaN and missing values rank last."""
    if stat not in table.columns or n == 0:
        return table.head(0)
    ok = table.filter((pl.col("status") == "ok") & pl.col(stat).is_not_null())
    if ok.schema[stat].is_float():
        ok = ok.filter(pl.col(stat).is_not_nan())
    return ok.sort([stat, "index"], descending=[direction == "maximize", False]).head(n)


def write_results(
    plan: SweepPlan,
    reports: dict[int, RunReport],
    *,
    execution: Execution,
    started_at: str,
    finished_at: str,
) -> tuple[pl.DataFrame, SweepManifest]:
    directory = plan.output_dir
    table = results_table(plan, reports)
    partial = directory / f".{RESULTS}.part"
    table.write_parquet(partial)
    os.replace(partial, directory / RESULTS)
    write_selection(plan, table, reports)
    manifest = SweepManifest(
        sweep_id=plan.sweep_id,
        name=plan.config.name,
        config_sha256=plan.config_sha256,
        seed=plan.config.seed,
        objective={
            "stat": plan.config.ranking().stat,
            "direction": plan.config.ranking().direction,
        },
        points=len(plan.runs),
        ok=sum(isinstance(r, RunCompleted) for r in reports.values()),
        failed=sum(isinstance(r, RunFailed) for r in reports.values()),
        digest=sweep_digest(plan, reports),
        results_sha256=hashlib.sha256((directory / RESULTS).read_bytes()).hexdigest(),
        git_sha=plan.code.git_sha,
        git_dirty=plan.code.git_dirty,
        package_version=plan.code.package_version,
        code_sha256=plan.code.code_sha256,
        strategy_sha256=plan.code.strategy_sha256,
        data=plan.data,
        python=sys.version.split()[0],
        platform=platform.platform(),
        execution=execution,
        started_at=started_at,
        finished_at=finished_at,
    )
    text = msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"
    (directory / MANIFEST).write_bytes(text)
    return table, manifest


def returns_of(reports: dict[int, RunReport]) -> dict[int, list[float]]:
    return {i: r.returns for i, r in reports.items() if isinstance(r, RunCompleted)}


def write_selection(
    plan: SweepPlan, table: pl.DataFrame, reports: dict[int, RunReport]
) -> Selection:
    """The overfitting statistics of the sweep's best point, as `overfitting.json`, and the
    points' period returns as `returns.parquet` (one row per successful point)."""
    goal = plan.config.ranking()
    ranked = best(table, goal.stat, goal.direction, table.height)
    found = assess(table, returns_of(reports), ranked, period_seconds(plan))
    text = msgspec.json.format(msgspec.json.encode(found), indent=2) + b"\n"
    (plan.output_dir / OVERFITTING).write_bytes(text)
    series = returns_of(reports)
    frame = pl.DataFrame(
        {
            "index": pl.Series(list(series), dtype=pl.Int64),
            "returns": pl.Series(list(series.values()), dtype=pl.List(pl.Float64)),
        }
    )
    partial = plan.output_dir / f".{RETURNS}.part"
    frame.write_parquet(partial)
    os.replace(partial, plan.output_dir / RETURNS)
    return found


def period_seconds(plan: SweepPlan) -> float:
    """The width of the periods the points' returns are measured over."""
    if not plan.inputs:
        return math.nan
    first = min(_epoch_ns(entry.first_ts) for entry in plan.inputs.values())
    last = max(_epoch_ns(entry.last_ts) for entry in plan.inputs.values())
    return period_width(last - first) / 1e9


def _epoch_ns(stamp: str) -> int:
    """A manifest time stamp (UTC, `Z`, up to nanoseconds) to the second, which is enough here."""
    whole = stamp.rstrip("Z").split(".")[0]
    moment = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.UTC)
    return int(moment.timestamp()) * 10**9


def read_manifest(path: Path) -> SweepManifest:
    return msgspec.json.decode(path.read_bytes(), type=SweepManifest)
