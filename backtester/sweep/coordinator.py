"""The coordinator: publish a sweep's data and jobs, collect one result per point, write the table.

Accounting is by point: a result is accepted only if it names this sweep, a point of it and that
point's run id; the first accepted result of a point wins and any later one is counted as a
duplicate and dropped. Results are journaled as they arrive, so `--resume` publishes only the points
that have none; results already in the server's results stream (a worker that finished while the
coordinator was down) are read back before anything is published.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import msgspec
import polars as pl
import structlog

from backtester.data.redaction import without_userinfo
from backtester.manifest import utc_now
from backtester.sweep.cache import default_cache_dir
from backtester.sweep.execute import source_files
from backtester.sweep.local import LocalWorkers
from backtester.sweep.nats_adapter import Broker, Credentials, QueueSettings, ResultFeed
from backtester.sweep.plan import PlannedRun, SweepPlan
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
from backtester.sweep.server import EmbeddedServer
from backtester.sweep.spec import (
    DataRef,
    ExecuteRun,
    MalformedMessage,
    RunCompleted,
    RunFailed,
    RunReport,
    decode_report,
    encode,
)
from backtester.sweep.trust import sweep_strategy_modules

log = structlog.get_logger("backtester.sweep.coordinator")


class SweepSettings(msgspec.Struct, frozen=True):
    """How to run a sweep; none of it changes a result."""

    nats_url: str | None = None
    credentials: Credentials = Credentials()
    workers: int = 0
    queue: QueueSettings = QueueSettings()
    cache_dir: str = ""
    resume: bool = False
    jetstream_timeout: float = 30.0


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


class Collector:
    def __init__(self, plan: SweepPlan) -> None:
        self.plan = plan
        self._runs = {run.index: run for run in plan.runs}
        self.reports: dict[int, RunReport] = {}
        self.duplicates = 0
        self.rejected = 0

    def accept(self, report: RunReport) -> str | None:
        """None when accepted; else why not ("duplicate" or the reason it was rejected)."""
        run = self._runs.get(report.index)
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
            return None
        self.rejected += 1
        return reason

    def missing(self) -> list[PlannedRun]:
        return [run for run in self.plan.runs if run.index not in self.reports]

    @property
    def complete(self) -> bool:
        return len(self.reports) == len(self.plan.runs)


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
    collector = Collector(plan)
    for report in read_journal(directory / JOURNAL):
        reason = collector.accept(report)
        if reason is not None and reason != "duplicate":
            log.warning("journal.ignored", index=report.index, reason=reason)
    already_done = len(collector.reports)
    objective = plan.config.objective
    progress = Progress(
        len(plan.runs),
        stat=objective.stat,
        maximize=objective.direction == "maximize",
        stream=stream or sys.stderr,
    )
    progress.resumed(
        already_done, sum(isinstance(r, RunFailed) for r in collector.reports.values())
    )
    journal = Journal(directory / JOURNAL)
    published, seconds = 0, 0.0
    try:
        if not collector.complete:
            published, seconds = await _run_missing(plan, settings, collector, journal, progress)
    finally:
        journal.close()
        progress.close()
    execution = Execution(
        workers=settings.workers,
        nats="embedded" if settings.nats_url is None else _public(settings.nats_url),
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
    return SweepOutcome(
        plan=plan,
        table=table,
        manifest=manifest,
        published=published,
        already_done=already_done,
        duplicates=collector.duplicates,
        rejected=collector.rejected,
        seconds=seconds,
    )


async def _run_missing(
    plan: SweepPlan,
    settings: SweepSettings,
    collector: Collector,
    journal: Journal,
    progress: Progress,
) -> tuple[int, float]:
    """Publish the points without a result and collect until every point has one: (jobs
    published, seconds from the first job to the last result)."""
    with contextlib.ExitStack() as stack:
        server = None if settings.nats_url else stack.enter_context(EmbeddedServer())
        url = server.url if server else str(settings.nats_url)
        credentials = server.credentials if server else settings.credentials
        broker = await Broker.connect(url, credentials, name="backtester-coordinator")
        try:
            await broker.wait_for_jetstream(settings.jetstream_timeout)
            await broker.ensure_queue(settings.queue)
            workers = None
            if settings.workers > 0:
                workers = stack.enter_context(
                    LocalWorkers(
                        settings.workers,
                        url,
                        credentials,
                        cache_dir=Path(settings.cache_dir or default_cache_dir()),
                        log_dir=plan.output_dir / "workers",
                        allow_strategies=sweep_strategy_modules(plan.config),
                    )
                )
            session = _Session(plan, settings, broker, collector, journal, progress)
            refs = await session.publish_data()
            feed = await broker.results(plan.sweep_id)
            await session.replay(feed)
            started = time.perf_counter()
            published = await session.publish_jobs(refs)
            # After publishing: a job the server already had answers with its original sequence,
            # which is how a dead job from before a resume is recognised.
            await broker.on_max_deliveries(session.gave_up)
            log.info(
                "sweep.published",
                sweep_id=plan.sweep_id,
                jobs=published,
                already_done=len(plan.runs) - published,
                nats="embedded" if settings.nats_url is None else _public(url),
            )
            while not collector.complete:
                for data in await feed.next_batch(timeout=0.5):
                    session.receive(data)
                if server is not None:
                    server.check()
                if workers is not None:
                    workers.check()
                progress.draw()
            seconds = time.perf_counter() - started
            await feed.close()
        finally:
            await broker.close()
    return published, seconds


class _Session:
    def __init__(
        self,
        plan: SweepPlan,
        settings: SweepSettings,
        broker: Broker,
        collector: Collector,
        journal: Journal,
        progress: Progress,
    ) -> None:
        self.plan = plan
        self.settings = settings
        self.broker = broker
        self.collector = collector
        self.journal = journal
        self.progress = progress
        self.jobs_by_seq: dict[int, PlannedRun] = {}
        self._params = {run.index: run.params for run in plan.runs}

    async def publish_data(self) -> dict[str, DataRef]:
        """Each input file once into the object store, named by its sha256."""
        refs: dict[str, DataRef] = {}
        for data in self.plan.data:
            if not await self.broker.has_file(data.sha256):
                await self.broker.put_file(data.sha256, Path(data.path))
                log.info("data.published", sha256=data.sha256[:16], bytes=data.size, path=data.path)
            refs[data.path] = DataRef(
                symbol=data.symbol,
                sha256=data.sha256,
                size=data.size,
                suffix=Path(data.path).suffix.lower(),
            )
        return refs

    async def replay(self, feed: ResultFeed) -> None:
        seen = 0
        while seen < feed.stored:
            batch = await feed.next_batch(timeout=2.0)
            if not batch:
                break
            for data in batch:
                self.receive(data)
            seen += len(batch)
        if seen:
            log.info("results.replayed", results=seen, points_done=len(self.collector.reports))

    async def publish_jobs(self, refs: dict[str, DataRef]) -> int:
        queue = self.settings.queue
        count = 0
        for run in self.collector.missing():
            job = ExecuteRun(
                sweep_id=self.plan.sweep_id,
                index=run.index,
                run_id=run.run_id,
                spec=run.spec,
                data=[refs[source.path] for source in source_files(run.spec)],
                code_sha256=self.plan.code.code_sha256,
                max_deliver=queue.max_deliver,
                ack_wait=queue.ack_wait,
            )
            seq, _ = await self.broker.publish_job(self.plan.sweep_id, run.run_id, encode(job))
            self.jobs_by_seq[seq] = run
            count += 1
        return count

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
        self.journal.append(report)
        stats = report.stats if isinstance(report, RunCompleted) else None
        self.progress.add(isinstance(report, RunCompleted), stats, self._params[report.index])

    async def gave_up(self, seq: int) -> None:
        """The server stopped redelivering a job: every delivery died or timed out. Recorded as a
        failure through the results stream, like any other result, so a resume sees it too."""
        run = self.jobs_by_seq.get(seq)
        if run is None or run.index in self.collector.reports:
            return
        queue = self.settings.queue
        report = RunFailed(
            sweep_id=self.plan.sweep_id,
            index=run.index,
            run_id=run.run_id,
            error=f"no result after {queue.max_deliver} deliveries: each worker died or "
            f"exceeded ack_wait ({queue.ack_wait:g}s) without reporting",
            worker="coordinator",
            attempt=queue.max_deliver,
        )
        await self.broker.publish_result(self.plan.sweep_id, run.run_id, encode(report))
        await self.broker.delete_job(seq)


def _public(url: str) -> str:
    """A server URL without any user:password@ part, fit for a manifest."""
    return without_userinfo(url)
