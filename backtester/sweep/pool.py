"""Runs a sweep's points on local worker processes, without NATS: what a notebook's
`Backtest.optimize` uses by default.

Each process takes one job at a time from a shared queue and runs it with the same code as a NATS
worker (`execute`), so a point's digest and statistics are the same however it ran. The processes
are spawned, never forked: a forked child of a process that has used polars' thread pool can
deadlock in its first polars call (seen here). A strategy class defined in a notebook or a script
(module `__main__`, which a spawned process cannot import) is sent to them by value (cloudpickle)
and installed under the same name. A run that raises is reported failed at once: a run is
deterministic, so a retry would fail alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import pickle
import queue
import sys
from collections.abc import AsyncIterator
from multiprocessing.context import BaseContext
from typing import Any

import cloudpickle

from backtester.config import FileSource
from backtester.engine import assembly
from backtester.runs.inputs import SourceFrame, read_file_source
from backtester.sweep.execute import RunSpec, execute, source_files
from backtester.sweep.local import WorkersLost
from backtester.sweep.memory import keep_freed_memory
from backtester.sweep.plan import PlannedRun, SweepPlan
from backtester.sweep.spec import RunCompleted, RunFailed, RunReport, encode, plain_stats

_Job = tuple[str, int, str, RunSpec]


def _context() -> BaseContext:
    return multiprocessing.get_context("spawn")


def main_classes(names: list[str]) -> bytes:
    """The `__main__` strategy classes among `names`, pickled by value for spawned processes."""
    found = {}
    for name in names:
        module, _, attribute = name.partition(":")
        if module == "__main__":
            found[attribute] = assembly.strategy_class(name)
    return cloudpickle.dumps(found) if found else b""


def _install(classes: bytes) -> None:
    if classes:
        main = sys.modules["__main__"]
        for attribute, value in pickle.loads(classes).items():
            setattr(main, attribute, value)


def _serve(name: str, jobs: Any, results: Any, classes: bytes) -> None:
    keep_freed_memory()
    _install(classes)
    loaded: dict[FileSource, SourceFrame] = {}

    def files(spec: RunSpec) -> list[SourceFrame]:
        for source in source_files(spec):
            if source not in loaded:
                loaded[source] = read_file_source(source)
        return [loaded[source] for source in source_files(spec)]

    while True:
        job: _Job | None = jobs.get()
        if job is None:
            return
        sweep_id, index, run_id, spec = job
        report: RunReport
        try:
            outcome = execute(spec, files(spec))
            report = RunCompleted(
                sweep_id=sweep_id,
                index=index,
                run_id=run_id,
                digest=outcome.digest,
                stats=plain_stats(outcome.stats),
                returns=outcome.returns,
                worker=name,
            )
        except Exception as exc:  # the run's own failure is its result
            report = RunFailed(
                sweep_id=sweep_id,
                index=index,
                run_id=run_id,
                error=f"{type(exc).__name__}: {exc}",
                worker=name,
            )
        results.put(encode(report))


class PoolRunner:
    def __init__(self, plan: SweepPlan, workers: int) -> None:
        context = _context()
        classes = main_classes([plan.config.base.get("strategy", {}).get("name", "")])
        self.plan = plan
        self._jobs: Any = context.Queue()
        self._results: Any = context.Queue()
        self._procs = [
            context.Process(  # type: ignore[attr-defined]
                target=_serve,
                args=(f"process-{i}", self._jobs, self._results, classes),
                name=f"backtester-worker-{i}",
                daemon=True,
            )
            for i in range(workers)
        ]
        for proc in self._procs:
            proc.start()
        self.published = 0

    async def replay(self) -> list[bytes]:
        return []

    async def submit(self, runs: list[PlannedRun]) -> None:
        for run in runs:
            self._jobs.put((self.plan.sweep_id, run.index, run.run_id, run.spec))
            self.published += 1

    async def next_batch(self, timeout: float) -> list[bytes]:
        found: list[bytes] = []
        with contextlib.suppress(queue.Empty):
            found.append(await asyncio.to_thread(self._results.get, True, timeout))
            while True:
                found.append(self._results.get_nowait())
        return found

    def check(self) -> None:
        for proc in self._procs:
            if proc.exitcode is not None:
                raise WorkersLost(
                    f"local worker process {proc.name} died (exit code {proc.exitcode})"
                )

    def stop(self) -> None:
        for _ in self._procs:
            with contextlib.suppress(Exception):
                self._jobs.put_nowait(None)
        for proc in self._procs:
            proc.join(timeout=2)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        self._jobs.close()
        self._results.close()


@contextlib.asynccontextmanager
async def pool_runner(plan: SweepPlan, workers: int) -> AsyncIterator[PoolRunner]:
    runner = PoolRunner(plan, workers)
    try:
        yield runner
    finally:
        runner.stop()
