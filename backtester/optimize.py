"""`Backtest.optimize`: a sweep or a search from a notebook, run by the sweep machinery itself.

The backtest is described as the run config it is equivalent to (`runs.notebook.run_config_of`:
a DataFrame is stored once as a Parquet file named by its content), the keyword arguments become
the sweep's parameter space, and the sweep runs as `python -m backtester sweep` runs it: the same
points, seeds, run ids, results table and digest. Without `nats=`, the points run on local worker
processes and no server is needed; with `nats=URL` they go to that server's workers. The sweep is
kept under `<out>/sweeps/<sweep_id>/`, so calling `optimize` again with the same arguments reads
the finished sweep back (or finishes an interrupted one) instead of running it again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import io
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import msgspec
import polars as pl

from backtester.runs.notebook import SaveError, run_config_of
from backtester.sweep.config import decode_sweep_config
from backtester.sweep.coordinator import SweepOutcome, SweepSettings, run_sweep
from backtester.sweep.plan import Keep, build_plan
from backtester.sweep.results import best as ranked
from backtester.sweep.selection import Selection

if TYPE_CHECKING:
    from backtester.backtest import Backtest

Method = Literal["grid", "random", "tpe", "cmaes", "nsga2"]
Constraint = str | Callable[[Any], bool] | None
T = TypeVar("T")


class _NoParams(msgspec.Struct, frozen=True):
    pass


@dataclass(frozen=True)
class Optimization:
    """What `Backtest.optimize` found. `table`: one row per point (parameters `param.<name>`, seed,
    run id, status, digest, every statistic), as the sweep's results.parquet; `best`: the best
    point's parameters by the first objective; `pareto`: for several objectives, the points no
    other point beats on all of them; `selection`: how far the best can be trusted (PBO, DSR...)."""

    table: pl.DataFrame
    best: dict[str, Any]
    best_stats: dict[str, Any]
    objectives: list[tuple[str, str]]
    pareto: pl.DataFrame | None
    selection: Selection
    method: str
    sweep_id: str
    digest: str
    directory: Path
    runs: list[Path]  # the best points' run directories (`materialize=`), best first

    def __repr__(self) -> str:
        stat, direction = self.objectives[0]
        shown = ", ".join(f"{k}={v}" for k, v in self.best.items())
        value = self.best_stats.get(stat)
        lines = [
            f"Optimization {self.sweep_id} ({self.method}, {self.table.height} points)",
            f"best by {stat} ({direction}): {shown}  ->  {stat} = {value}",
            f"verdict: {self.selection.verdict}",
            f"results: {self.directory}",
        ]
        return "\n".join(lines)

    def plot(self, x: str | None = None, y: str | None = None) -> Any:
        """The objective over two parameters (heatmap) and, for a search, the objective by trial
        with the best so far; shown inline in a notebook."""
        from backtester.report.sweep_notebook import plot_optimization  # noqa: PLC0415

        return plot_optimization(self, x, y)


def optimize(
    bt: Backtest,
    *,
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
    top: int = 10,
    materialize: int = 1,
    **space: Any,
) -> Optimization:
    objectives = objectives_of(maximize, minimize)
    raw = sweep_raw(bt, objectives, seed, out, top)
    raw |= space_of(bt, out, method, space, n_trials, batch, startup, population)
    keep, identity = keep_of(constraint, raw)
    plan = build_plan(decode_sweep_config(raw, "optimize"), keep=keep, identity=identity)
    settings = local_or_nats(nats, workers, materialize)
    outcome = run_async(run_sweep(plan, settings, stream=progress_stream()))
    return _optimization(outcome, objectives, method)


def sweep_raw(
    bt: Backtest, objectives: list[tuple[str, str]], seed: int, out: str | Path, top: int
) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": f"optimize-{bt.strategy.__name__}",
        "seed": seed,
        "top": top,
        "output_dir": str(out),
        "objective": {"stat": objectives[0][0], "direction": objectives[0][1]},
    }
    if len(objectives) > 1:
        raw["objectives"] = [{"stat": s, "direction": d} for s, d in objectives]
    return raw


def space_of(
    bt: Backtest,
    out: str | Path,
    method: Method,
    space: dict[str, Any],
    n_trials: int | None,
    batch: int,
    startup: int,
    population: int | None,
) -> dict[str, Any]:
    """The base config (with the fixed values) and the parameter space of the keywords."""
    if not space:
        raise ValueError("give at least one parameter to optimize, e.g. fast=range(5, 50, 5)")
    swept = {k: v for k, v in space.items() if _is_space(v)}
    fixed = {k: v for k, v in space.items() if k not in swept}
    found = {"base": _base(bt, Path(out), fixed)}
    return found | _space(method, swept, n_trials, batch, startup, population)


def keep_of(constraint: Constraint, raw: dict[str, Any]) -> tuple[Keep | None, str]:
    """A constraint expression goes into the config; a function filters points (`keep`), named
    for the sweep id by its code."""
    if isinstance(constraint, str):
        raw["constraints"] = [constraint]
        return None, ""
    if constraint is None:
        return None, ""
    check = constraint
    return (lambda params: bool(check(SimpleNamespace(**params)))), _callable_identity(check)


def local_or_nats(nats: str | None, workers: int | None, materialize: int) -> SweepSettings:
    local = nats is None
    count = workers if workers is not None else (_cores() if local else 0)
    return SweepSettings(
        nats_url=nats, workers=count, resume=True, local=local, materialize=materialize
    )


def objectives_of(
    maximize: str | Sequence[str] | None, minimize: str | Sequence[str] | None
) -> list[tuple[str, str]]:
    def names(given: str | Sequence[str] | None) -> list[str]:
        return [given] if isinstance(given, str) else list(given or [])

    found = [(s, "maximize") for s in names(maximize)] + [(s, "minimize") for s in names(minimize)]
    return found or [("sharpe", "maximize")]


def _is_space(value: Any) -> bool:
    return isinstance(value, range | list | tuple)


def _base(bt: Backtest, out: Path, fixed: dict[str, Any]) -> dict[str, Any]:
    origin = bt.origin(_NoParams(), {}, "", "")
    try:
        config = run_config_of(origin, out)
    except SaveError as exc:
        # Every point runs from its run config, in another process: what has no config form
        # cannot be optimized either.
        reason = str(exc).removeprefix("cannot save: ")
        raise SaveError(
            f"cannot optimize: {reason} (each point runs from its run config)"
        ) from None
    base: dict[str, Any] = msgspec.to_builtins(config)
    base["strategy"]["params"] = dict(fixed)
    for key in ("seed", "output_dir"):
        base.pop(key)
    return base


def _space(
    method: Method,
    swept: dict[str, Any],
    n_trials: int | None,
    batch: int,
    startup: int,
    population: int | None,
) -> dict[str, Any]:
    if method == "grid":
        return {"grid": {name: list(values) for name, values in swept.items()}}
    if n_trials is None:
        raise ValueError(f"method={method!r} needs n_trials")
    dists = {name: _distribution(values) for name, values in swept.items()}
    if method == "random":
        return {"random": {"n": n_trials, "params": dists}}
    search: dict[str, Any] = {
        "method": method,
        "trials": n_trials,
        "batch": batch,
        "startup": startup,
        "params": dists,
    }
    if population is not None:
        search["population"] = population
    return {"search": search}


def _distribution(values: range | list[Any] | tuple[Any, ...]) -> dict[str, Any]:
    """`range(a, b, s)`: integers a, a + s, ... below b; `(low, high)`: every value between them
    (integers if both are); a list: those values."""
    if isinstance(values, range):
        if len(values) == 0:
            raise ValueError(f"{values} is empty")
        found: dict[str, Any] = {"randint": [values[0], values[-1]]}
        if values.step != 1:
            found["step"] = values.step
        return found
    if isinstance(values, tuple):
        if len(values) != 2:
            raise ValueError(f"a (low, high) pair, got {values}")
        low, high = values
        both_int = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        return {"randint" if both_int else "uniform": [low, high]}
    return {"choice": list(values)}


def _callable_identity(check: Callable[[Any], bool]) -> str:
    """What a constraint function does, for the sweep id: its code and constants."""
    code = getattr(check, "__code__", None)
    if code is None:
        return repr(check)
    text = repr((code.co_code, code.co_consts, code.co_names)).encode()
    return hashlib.sha256(text).hexdigest()


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def progress_stream() -> Any:
    return sys.stderr if sys.stderr is not None else io.StringIO()


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end, also from a notebook, whose own event loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main).result()


def _optimization(
    outcome: SweepOutcome, objectives: list[tuple[str, str]], method: str
) -> Optimization:
    table = outcome.table
    stat, direction = objectives[0]
    top = ranked(table, stat, direction, 1)
    params = [c for c in table.columns if c.startswith("param.")]
    best: dict[str, Any] = {}
    best_stats: dict[str, Any] = {}
    if top.height:
        row = top.row(0, named=True)
        best = {c.removeprefix("param."): row[c] for c in params}
        best_stats = {k: v for k, v in row.items() if k not in params}
    directory = outcome.plan.output_dir
    selection = msgspec.json.decode((directory / "overfitting.json").read_bytes(), type=Selection)
    return Optimization(
        table=table,
        best=best,
        best_stats=best_stats,
        objectives=objectives,
        pareto=pareto_front(table, objectives) if len(objectives) > 1 else None,
        selection=selection,
        method=method,
        sweep_id=outcome.plan.sweep_id,
        digest=outcome.manifest.digest,
        directory=directory,
        runs=outcome.materialized,
    )


def pareto_front(table: pl.DataFrame, objectives: list[tuple[str, str]]) -> pl.DataFrame:
    """The successful points that no other point beats on every objective (ties not beaten)."""
    names = [s for s, _ in objectives]
    ok = table.filter(pl.col("status") == "ok").drop_nulls(names)
    ok = ok.filter(pl.all_horizontal(pl.col(n).cast(pl.Float64).is_finite() for n in names))
    signs = [1.0 if d == "maximize" else -1.0 for _, d in objectives]
    values = [
        [sign * float(v) for v, sign in zip(row, signs, strict=True)]
        for row in ok.select(names).rows()
    ]
    keep = [
        not any(
            all(o >= m for o, m in zip(other, mine, strict=True)) and other != mine
            for other in values
        )
        for mine in values
    ]
    return ok.filter(pl.Series(keep, dtype=pl.Boolean))
