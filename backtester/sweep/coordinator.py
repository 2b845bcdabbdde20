"""The coordinator: ask the sweep's points, run them anywhere, collect one result per point, tell
each back in point order (which lets the search ask the next), and write the table.

Accounting is by point: a result is accepted only if it names this sweep, a point of it and that
point's run id; the first accepted result of a point wins and any later one is counted as a
duplicate and dropped. Results are journaled as they arrive, so `--resume` runs only the points
that have none; results already in the server's results stream (a worker that finished while the
coordinator was down) are read back before anything is published. Two points of a search that
propose the same values are one run: it runs once and both points get its result.

Where the runs go is a runner: NATS JetStream (`nats_runner`: an embedded server or a cluster,
workers anywhere) or local processes (`pool`, no server: a notebook's default).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

import msgspec
import polars as pl
import structlog

from backtester.manifest import utc_now
from backtester.sweep.materialize import materialize
from backtester.sweep.nats_adapter import Credentials, QueueSettings
from backtester.sweep.nats_runner import nats_runner, public_url
from backtester.sweep.plan import PlannedRun, SweepPlan
from backtester.sweep.pool import pool_runner
from backtester.sweep.progress import Progress
from backtester.sweep.results import (
    JOURNAL,
    Execution,
    Journal,
    SweepManifest,
    prepare_directory,
    read_journal,
    sweep_lock,
    write_results,
)
from backtester.sweep.search import Search, open_search, total_points
from backtester.sweep.spec import (
    MalformedMessage,
    RunCompleted,
    RunFailed,
    RunReport,
    decode_report,
)

log = structlog.get_logger("backtester.sweep.coordinator")


class SweepSettings(msgspec.Struct, frozen=True):
    """How to run a sweep; none of it changes a result. `local=True` runs the points on `workers`
    local processes without NATS (then `nats_url` must be None)."""

    nats_url: str | None = None
    credentials: Credentials = Credentials()
    workers: int = 0
    queue: QueueSettings = QueueSettings()
    cache_dir: str = ""
    resume: bool = False
    jetstream_timeout: float = 30.0
    local: bool = False
    materialize: int = 1  # the best runs written as full run directories (`sweep/materialize.py`)


@dataclass
class SweepOutcome:
    plan: SweepPlan
    table: pl.DataFrame
    manifest: SweepManifest
    published: int
    already_done: int
    duplicates: int
    rejected: int
    seconds: float  # from the first job published to the last result
    cpu_seconds: float  # this process's CPU time over the same span (asking, telling, collecting)
    materialized: list[Path]  # the best points' run directories, best first


class Runner(Protocol):
    published: int

    async def replay(self) -> list[bytes]: ...

    async def submit(self, runs: list[PlannedRun]) -> None: ...

    async def next_batch(self, timeout: float) -> list[bytes]: ...

    def check(self) -> None: ...


class Collector:
    def __init__(self, plan: SweepPlan) -> None:
        self.plan = plan
        self.reports: dict[int, RunReport] = {}
        self.by_run_id: dict[str, RunReport] = {}
        self.duplicates = 0
        self.rejected = 0

    def accept(self, report: RunReport) -> str | None:
        """None when accepted; else why not ("duplicate" or the reason it was rejected)."""
        runs = self.plan.runs
        run = runs[report.index] if 0 <= report.index < len(runs) else None
        if report.sweep_id != self.plan.sweep_id:
            reason = f"result of another sweep ({report.sweep_id})"
        elif run is None:
            reason = f"no point {report.index} in this sweep"
        elif run.run_id != report.run_id:
            reason = f"run id {report.run_id} is not point {report.index}'s ({run.run_id})"
        elif report.index in self.reports:
            self.duplicates += 1
            return "duplicate"
        else:
            self.reports[report.index] = report
            self.by_run_id.setdefault(report.run_id, report)
            return None
        self.rejected += 1
        return reason

    def shared(self, run: PlannedRun) -> RunReport | None:
        """The result of another point that is the same run, as this point's."""
        found = self.by_run_id.get(run.run_id)
        if found is None or run.index in self.reports:
            return None
        return msgspec.structs.replace(found, index=run.index)


async def run_sweep(
    plan: SweepPlan, settings: SweepSettings, *, stream: TextIO | None = None
) -> SweepOutcome:
    with sweep_lock(plan):
        return await _run_sweep(plan, settings, stream=stream)


async def _run_sweep(
    plan: SweepPlan, settings: SweepSettings, *, stream: TextIO | None
) -> SweepOutcome:
    started_at = utc_now()
    directory = prepare_directory(plan, resume=settings.resume)
    search = open_search(plan, directory)
    collector = Collector(plan)
    for report in read_journal(directory / JOURNAL):
        reason = collector.accept(report)
        if reason is not None and reason != "duplicate":
            log.warning("journal.ignored", index=report.index, reason=reason)
    already_done = len(collector.reports)
    objective = plan.config.ranking()
    progress = Progress(
        total_points(plan),
        stat=objective.stat,
        maximize=objective.direction == "maximize",
        stream=stream or sys.stderr,
    )
    progress.resumed(
        already_done, sum(isinstance(r, RunFailed) for r in collector.reports.values())
    )
    journal = Journal(directory / JOURNAL)
    session = _Session(plan, collector, journal, progress)
    published, seconds, cpu_seconds = 0, 0.0, 0.0
    try:
        if not _finished(search, collector):
            async with _runner(plan, settings, collector) as runner:
                for data in await runner.replay():
                    session.receive(data)
                started, cpu = time.perf_counter(), time.process_time()
                await _drive(search, runner, session)
                seconds = time.perf_counter() - started
                cpu_seconds = time.process_time() - cpu
                published = runner.published
    finally:
        search.close()
        journal.close()
        progress.close()
    execution = Execution(
        workers=settings.workers,
        nats=_where(settings),
        ack_wait=settings.queue.ack_wait,
        max_deliver=settings.queue.max_deliver,
    )
    table, manifest = write_results(
        plan,
        collector.reports,
        execution=execution,
        started_at=started_at,
        finished_at=utc_now(),
    )
    materialized = materialize(plan, table, settings.materialize)
    return SweepOutcome(
        plan=plan,
        table=table,
        manifest=manifest,
        published=published,
        already_done=already_done,
        duplicates=collector.duplicates,
        rejected=collector.rejected,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        materialized=materialized,
    )


def _finished(search: Search, collector: Collector) -> bool:
    """Whether nothing is left to run or tell, so no runner needs starting."""
    return search.finished(collector.reports)


def _where(settings: SweepSettings) -> str:
    if settings.local:
        return "none (local processes)"
    return "embedded" if settings.nats_url is None else public_url(settings.nats_url)


@contextlib.asynccontextmanager
async def _runner(
    plan: SweepPlan, settings: SweepSettings, collector: Collector
) -> AsyncIterator[Runner]:
    if settings.local:
        async with pool_runner(plan, max(settings.workers, 1)) as pool:
            yield pool
        return
    async with nats_runner(
        plan,
        url=settings.nats_url,
        credentials=settings.credentials,
        workers=settings.workers,
        queue=settings.queue,
        cache_dir=settings.cache_dir,
        jetstream_timeout=settings.jetstream_timeout,
        done=lambda index: index in collector.reports,
    ) as nats:
        log.info(
            "sweep.started",
            sweep_id=plan.sweep_id,
            nats="embedded" if settings.nats_url is None else public_url(settings.nats_url),
        )
        yield nats


async def _drive(search: Search, runner: Runner, session: _Session) -> None:
    """Run each point as it is asked (each distinct run once), wait for the earliest point not told
    yet, tell it, and take what the search may ask after that tell; until nothing is in flight.
    The search's window of points keeps the workers busy while the coordinator asks, and every
    ask follows the same tells however the results arrive. The asks and tells reach the disk
    (an fsync on another thread) once per window of tells, not where anyone waits for it."""
    collector = session.collector
    in_flight: deque[PlannedRun] = deque()
    sent: set[str] = set()  # run ids published by this session
    syncing: asyncio.Future[None] | None = None
    told = 0
    try:
        while True:
            for run in search.proposals():
                in_flight.append(run)
                if run.index in collector.reports or run.run_id in sent:
                    continue
                if collector.shared(run) is None:
                    sent.add(run.run_id)
                    await runner.submit([run])
            if not in_flight:
                return
            head = in_flight.popleft()
            search.tell(head, await _result(head, runner, session))
            told += 1
            if told % search.window == 0 and (syncing is None or syncing.done()):
                if syncing is not None:
                    syncing.result()
                syncing = asyncio.ensure_future(asyncio.to_thread(search.persist))
    finally:
        if syncing is not None:
            await syncing


async def _result(run: PlannedRun, runner: Runner, session: _Session) -> RunReport:
    """`run`'s result: its own, another point's of the same run, or the next that arrives."""
    collector = session.collector
    while True:
        report = collector.reports.get(run.index)
        if report is not None:
            return report
        shared = collector.shared(run)
        if shared is not None:
            session.record(shared)
            continue
        for data in await runner.next_batch(timeout=0.5):
            session.receive(data)
        runner.check()
        session.progress.draw()


class _Session:
    """What happens to each result that arrives: accepted or not, journaled, counted."""

    def __init__(
        self, plan: SweepPlan, collector: Collector, journal: Journal, progress: Progress
    ) -> None:
        self.plan = plan
        self.collector = collector
        self.journal = journal
        self.progress = progress

    def receive(self, data: bytes) -> None:
        try:
            report = decode_report(data)
        except MalformedMessage as exc:
            self.collector.rejected += 1
            log.warning("result.rejected", reason=str(exc), bytes=len(data))
            return
        reason = self.collector.accept(report)
        if reason == "duplicate":
            log.info("result.duplicate", index=report.index, run_id=report.run_id)
            return
        if reason is not None:
            log.warning("result.rejected", reason=reason)
            return
        self._count(report)

    def record(self, report: RunReport) -> None:
        """A point's result that another point of the same run produced."""
        if self.collector.accept(report) is None:
            self._count(report)

    def _count(self, report: RunReport) -> None:
        self.journal.append(report)
        stats = report.stats if isinstance(report, RunCompleted) else None
        params = self.plan.runs[report.index].params
        self.progress.add(isinstance(report, RunCompleted), stats, params)
