"""A sweep worker: take one job at a time from the shared consumer, run it, publish the outcome, ack.

The order is what makes every run count exactly once: the result is published (deduplicated by
message id) before the job is acked, so a worker that dies in between leaves a job that is
redelivered and whose second result the server drops. A run that raises is retried on a later
delivery and reported as failed on the last one. A message that does not decode is terminated with
the reason logged; nothing a message contains can stop the worker. A job naming a strategy module
the worker does not allow (`trust`), or planned with other code than the worker runs, is handed back
for another worker, and reported failed with the reason on its last delivery; the module is never
imported.

Between two runs the worker is idle, so that time is kept short: a finished run is reported
(publish, then ack) while the next job is fetched, and the engine runs on one long-lived thread. The
next run starts once the report is done, so the engine never shares the interpreter with network
callbacks, and a stopping worker finishes the report before it disconnects. The next job is asked
for only once the run is over: a worker never holds a job it is not running while another idles.

Test hook: with `BACKTESTER_SWEEP_EXECUTION_LOG=<file>` set, the worker appends one line
`<run_id> <worker name>` to that file each time it starts executing a run, so tests can count
executions without parsing logs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import structlog

from backtester.data.redaction import redact
from backtester.manifest import package_sha256
from backtester.runs.inputs import SourceFrame
from backtester.sweep.cache import DataCache
from backtester.sweep.execute import RunOutcome, execute, source_files
from backtester.sweep.memory import keep_freed_memory
from backtester.sweep.nats_adapter import Broker, Credentials, Delivery, JobSource
from backtester.sweep.spec import (
    DataRef,
    ExecuteRun,
    MalformedMessage,
    RunCompleted,
    RunFailed,
    RunReport,
    decode_job,
    encode,
    plain_stats,
)
from backtester.sweep.trust import refusal

log = structlog.get_logger("backtester.sweep.worker")

EXECUTION_LOG_ENV = "BACKTESTER_SWEEP_EXECUTION_LOG"
# A worker that cannot take a job (other code than the coordinator planned with, a strategy it does
# not allow) hands it back after this delay, leaving it to a worker that can.
DECLINE_DELAY = 5.0


class WorkerOptions(msgspec.Struct, frozen=True):
    url: str
    credentials: Credentials = Credentials()
    cache_dir: str = ""
    name: str = ""
    parent_pid: int | None = None
    poll: float = 1.0
    allow_strategies: tuple[str, ...] = ()


class Stopped(Exception):
    pass


class Worker:
    def __init__(self, broker: Broker, options: WorkerOptions, stop: asyncio.Event) -> None:
        self.broker = broker
        self.options = options
        self.name = options.name or f"{socket.gethostname()}:{os.getpid()}"
        self.cache = DataCache(Path(options.cache_dir), broker.get_file)
        self.code_sha256 = package_sha256()
        self._stop = stop
        self._execution_log = os.environ.get(EXECUTION_LOG_ENV)
        self._reporting: asyncio.Task[None] | None = None
        self._runner: _RunThread | None = None
        self.executed = 0

    async def serve(self) -> None:
        source: JobSource | None = None
        waiting_logged = False
        try:
            while not self._stop.is_set() and self._parent_alive():
                if source is None:
                    source = await self.broker.bind_workers()
                    if source is None:
                        if not waiting_logged:
                            log.info("worker.waiting", reason="no job queue yet (no coordinator)")
                            waiting_logged = True
                        await self._sleep(self.options.poll)
                        continue
                    log.info("worker.ready", worker=self.name)
                try:
                    delivery = await self._next(source)
                except Exception as exc:  # e.g. a server restarting: the client reconnects
                    log.warning("fetch.failed", error=f"{type(exc).__name__}: {exc}")
                    await self._sleep(self.options.poll)
                    continue
                if delivery is None:
                    continue
                try:
                    await self.handle(delivery)
                except Stopped:
                    break
                except Exception as exc:  # a broken job or connection must not end the worker
                    log.exception("job.error", error=f"{type(exc).__name__}: {exc}")
        finally:
            # Bounded: with the server gone a publish would wait out its timeout, and a stopped
            # worker must exit within seconds (an unacknowledged job is simply redelivered).
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.reported(), 2)
            if source is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(source.close(), 1)

    async def _next(self, source: JobSource) -> Delivery | None:
        """The next job, or None after a poll interval or as soon as the worker is stopped."""
        fetch = asyncio.ensure_future(source.next(timeout=self.options.poll))
        stop = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({fetch, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if fetch.done():
            return fetch.result()
        fetch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fetch
        return None

    def _parent_alive(self) -> bool:
        if self.options.parent_pid is None or os.getppid() == self.options.parent_pid:
            return True
        log.warning("worker.orphaned", reason="the coordinator that started this worker is gone")
        return False

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def handle(self, delivery: Delivery) -> None:
        try:
            job = decode_job(delivery.data)
        except MalformedMessage as exc:
            log.warning("job.rejected", reason=str(exc), bytes=len(delivery.data))
            await delivery.reject()
            return
        if job.code_sha256 != self.code_sha256:
            reason = (
                f"this worker runs other code (package sha256 {self.code_sha256[:16]}) than the "
                f"sweep was planned with ({job.code_sha256[:16]}): the package's source changed "
                "after the sweep started, or the worker runs another version"
            )
            await self._refuse(job, delivery, reason)
            return
        refused = refusal(job.spec.strategy.name, self.options.allow_strategies)
        if refused is not None:
            await self._refuse(job, delivery, refused)
            return
        # Measured: letting the report overlap the run saved nothing, as its callbacks take the
        # interpreter from the engine for about as long as they would have kept it waiting.
        await self.reported()
        report = await self._run(job, delivery)
        if report is None:
            return
        self._reporting = asyncio.ensure_future(self._report(job, delivery, report))

    async def _refuse(self, job: ExecuteRun, delivery: Delivery, reason: str) -> None:
        log.warning("job.refused", run_id=job.run_id, attempt=delivery.attempt, reason=reason)
        if delivery.attempt < job.max_deliver:
            await delivery.retry(DECLINE_DELAY)  # a worker that allows it may take it
            return
        report = RunFailed(
            sweep_id=job.sweep_id,
            index=job.index,
            run_id=job.run_id,
            error=f"refused by worker {self.name}: {reason}",
            worker=self.name,
            attempt=delivery.attempt,
        )
        await self.reported()
        self._reporting = asyncio.ensure_future(self._report(job, delivery, report))

    async def reported(self) -> None:
        """Wait until the last finished run's result is published and its job acked."""
        if self._reporting is not None:
            task, self._reporting = self._reporting, None
            await task

    async def _report(self, job: ExecuteRun, delivery: Delivery, report: RunReport) -> None:
        try:
            duplicate = await self.broker.publish_result(job.sweep_id, job.run_id, encode(report))
            await delivery.ack()
        except Exception as exc:  # unacked, the job is redelivered after ack_wait and run again
            log.exception("report.failed", run_id=job.run_id, error=f"{type(exc).__name__}: {exc}")
            return
        log.info(
            "run.reported",
            run_id=job.run_id,
            index=job.index,
            status="ok" if isinstance(report, RunCompleted) else "failed",
            attempt=delivery.attempt,
            duplicate=duplicate,
        )

    async def _run(self, job: ExecuteRun, delivery: Delivery) -> RunReport | None:
        """The report to publish, or None when the job was handed back for another delivery.
        The server hears that the job is in progress from the first moment (fetching data can
        take longer than ack_wait too), until the outcome is known."""
        self._record_execution(job.run_id)
        started = time.perf_counter()
        beat = asyncio.ensure_future(self._heartbeat(delivery, job.ack_wait / 3))
        try:
            files = await self._fetch(job)
            outcome = await self._on_thread(lambda: execute(job.spec, self._load(job, files)))
        except Stopped:
            await delivery.retry(0)
            raise
        except Exception as exc:  # the run's own failure: a result to report, not a worker error
            error = f"{type(exc).__name__}: {exc}"
            if delivery.attempt < job.max_deliver:
                log.warning(
                    "run.retrying", run_id=job.run_id, attempt=delivery.attempt, error=error
                )
                await delivery.retry(0.1 * delivery.attempt)
                return None
            log.warning("run.failed", run_id=job.run_id, attempts=delivery.attempt, error=error)
            return RunFailed(
                sweep_id=job.sweep_id,
                index=job.index,
                run_id=job.run_id,
                error=error,
                worker=self.name,
                attempt=delivery.attempt,
            )
        finally:
            beat.cancel()
        self.executed += 1
        return RunCompleted(
            sweep_id=job.sweep_id,
            index=job.index,
            run_id=job.run_id,
            digest=outcome.digest,
            stats=plain_stats(outcome.stats),
            returns=outcome.returns,
            worker=self.name,
            attempt=delivery.attempt,
            seconds=time.perf_counter() - started,
        )

    async def _heartbeat(self, delivery: Delivery, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await delivery.in_progress()
            except Exception as exc:  # a missed beat costs at worst a redelivery
                log.warning("heartbeat.failed", error=f"{type(exc).__name__}: {exc}")

    async def _fetch(self, job: ExecuteRun) -> list[tuple[DataRef, Path]]:
        """Each data source's input file (the job lists them in the config's order), local and
        verified (fetched from the object store if new)."""
        sources = source_files(job.spec)
        if len(job.data) != len(sources):
            raise MalformedMessage(
                f"job names {len(job.data)} data file(s) for {len(sources)} data source(s)"
            )
        return [(ref, await self.cache.path(ref)) for ref in job.data]

    def _load(self, job: ExecuteRun, files: list[tuple[DataRef, Path]]) -> list[SourceFrame]:
        return [
            self.cache.load(source, ref, path)
            for source, (ref, path) in zip(source_files(job.spec), files, strict=True)
        ]

    async def _on_thread(self, work: Callable[[], RunOutcome]) -> RunOutcome:
        """Run `work` on a daemon thread, so the event loop keeps the heartbeat going and a
        stopped worker can exit without waiting for a run it has handed back."""
        if self._runner is None:
            self._runner = _RunThread()
        future = self._runner.submit(work)
        waiting: asyncio.Future[RunOutcome] = asyncio.wrap_future(future)
        stop: asyncio.Future[Any] = asyncio.ensure_future(self._stop.wait())
        both: set[asyncio.Future[Any]] = {waiting, stop}
        try:
            while True:
                done, _ = await asyncio.wait(
                    both, timeout=self.options.poll, return_when=asyncio.FIRST_COMPLETED
                )
                if waiting in done:
                    return waiting.result()
                if stop in done or not self._parent_alive():
                    self._runner = None  # busy with the abandoned run
                    raise Stopped
        finally:
            stop.cancel()

    def _record_execution(self, run_id: str) -> None:
        if self._execution_log:
            with open(self._execution_log, "a", encoding="utf-8") as handle:
                handle.write(f"{run_id} {self.name}\n")


class _RunThread:
    """One daemon thread that runs the engine job after job: starting a thread per run would put
    a thread start-up, and its wait for the new thread to be scheduled, between every two runs."""

    def __init__(self) -> None:
        self._work: queue.SimpleQueue[
            tuple[Callable[[], RunOutcome], concurrent.futures.Future[RunOutcome]]
        ] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="run", daemon=True)
        self._thread.start()

    def submit(self, work: Callable[[], RunOutcome]) -> concurrent.futures.Future[RunOutcome]:
        future: concurrent.futures.Future[RunOutcome] = concurrent.futures.Future()
        self._work.put((work, future))
        return future

    def _serve(self) -> None:
        while True:
            work, future = self._work.get()
            try:
                future.set_result(work())
            except BaseException as exc:
                future.set_exception(exc)


async def _cancelled(task: asyncio.Future[Any]) -> None:
    """Cancel `task` and wait for it to end. nats-py swallows a cancellation that lands while it
    flushes its CONNECT and goes on to its next attempt (seconds each, until connect_timeout), so
    the cancellation is repeated, each one ending the wait in progress, until the task is done."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    with contextlib.suppress(BaseException):
        task.result()


async def run_worker(options: WorkerOptions) -> int:
    keep_freed_memory()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Windows has no loop signal handlers; there Ctrl-C ends the worker through
        # KeyboardInterrupt, and its unacked job is redelivered after ack_wait.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    # SIGTERM must end a worker that is still connecting too (a server that does not answer).
    connecting = asyncio.ensure_future(
        Broker.connect(options.url, options.credentials, name="backtester-worker")
    )
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not connecting.done():
        await _cancelled(connecting)
        log.info("worker.stopped", reason="stopped while connecting", url=redact(options.url))
        return 0
    broker = connecting.result()
    worker = Worker(broker, options, stop)
    log.info(
        "worker.started",
        worker=worker.name,
        url=redact(options.url),
        cache=options.cache_dir,
        allow_strategies=list(options.allow_strategies),
    )
    try:
        await worker.serve()
    finally:
        await broker.close()
        log.info("worker.stopped", worker=worker.name, runs=worker.executed)
    return 0
