"""Runs a sweep's points on workers through NATS JetStream: the coordinator's side of the queue.

Opened once per sweep: connect (to the embedded server unless a URL is given), create the streams,
start the local workers, publish the input files, open the results feed and read back the results
already stored. Then each `submit` publishes a batch of jobs and `next_batch` returns the results
as the server pushes them. A job the server gave up redelivering is reported failed here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import structlog

from backtester.data.redaction import without_userinfo
from backtester.sweep.cache import default_cache_dir
from backtester.sweep.execute import source_files
from backtester.sweep.local import LocalWorkers
from backtester.sweep.nats_adapter import Broker, Credentials, QueueSettings, ResultFeed
from backtester.sweep.plan import PlannedRun, SweepPlan
from backtester.sweep.server import EmbeddedServer
from backtester.sweep.spec import DataRef, ExecuteRun, RunFailed, encode
from backtester.sweep.trust import sweep_strategy_modules

log = structlog.get_logger("backtester.sweep.nats_runner")


class NatsRunner:
    def __init__(
        self,
        plan: SweepPlan,
        broker: Broker,
        queue: QueueSettings,
        workers: LocalWorkers | None,
        done: Callable[[int], bool],
        server: EmbeddedServer | None = None,
    ) -> None:
        self.plan = plan
        self.server = server
        self.broker = broker
        self.queue = queue
        self.workers = workers
        self._done = done
        self._refs: dict[str, DataRef] = {}
        self._feed: ResultFeed | None = None
        self._watching = False
        self.jobs_by_seq: dict[int, PlannedRun] = {}
        self.published = 0

    async def publish_data(self) -> None:
        """Each input file once into the object store, named by its sha256."""
        for data in self.plan.data:
            if not await self.broker.has_file(data.sha256):
                await self.broker.put_file(data.sha256, Path(data.path))
                log.info("data.published", sha256=data.sha256[:16], bytes=data.size, path=data.path)
            self._refs[data.path] = DataRef(
                symbol=data.symbol,
                sha256=data.sha256,
                size=data.size,
                suffix=Path(data.path).suffix.lower(),
            )

    async def replay(self) -> list[bytes]:
        """The results the stream already holds for this sweep (a resumed sweep's)."""
        self._feed = await self.broker.results(self.plan.sweep_id)
        found: list[bytes] = []
        while len(found) < self._feed.stored:
            batch = await self._feed.next_batch(timeout=2.0)
            if not batch:
                break
            found += batch
        return found

    async def submit(self, runs: list[PlannedRun]) -> None:
        for run in runs:
            job = ExecuteRun(
                sweep_id=self.plan.sweep_id,
                index=run.index,
                run_id=run.run_id,
                spec=run.spec,
                data=[self._refs[source.path] for source in source_files(run.spec)],
                code_sha256=self.plan.code.code_sha256,
                max_deliver=self.queue.max_deliver,
                ack_wait=self.queue.ack_wait,
            )
            seq, _ = await self.broker.publish_job(self.plan.sweep_id, run.run_id, encode(job))
            self.jobs_by_seq[seq] = run
            self.published += 1
        if not self._watching:
            # After publishing: a job the server already had answers with its original sequence,
            # which is how a dead job from before a resume is recognised.
            self._watching = True
            await self.broker.on_max_deliveries(self.gave_up)

    async def next_batch(self, timeout: float) -> list[bytes]:
        assert self._feed is not None  # replay() opened it
        return await self._feed.next_batch(timeout)

    def check(self) -> None:
        if self.server is not None:
            self.server.check()
        if self.workers is not None:
            self.workers.check()

    async def gave_up(self, seq: int) -> None:
        """The server stopped redelivering a job: every delivery died or timed out. Recorded as a
        failure through the results stream, like any other result, so a resume sees it too."""
        run = self.jobs_by_seq.get(seq)
        if run is None or self._done(run.index):
            return
        report = RunFailed(
            sweep_id=self.plan.sweep_id,
            index=run.index,
            run_id=run.run_id,
            error=f"no result after {self.queue.max_deliver} deliveries: each worker died or "
            f"exceeded ack_wait ({self.queue.ack_wait:g}s) without reporting",
            worker="coordinator",
            attempt=self.queue.max_deliver,
        )
        await self.broker.publish_result(self.plan.sweep_id, run.run_id, encode(report))
        await self.broker.delete_job(seq)

    async def close(self) -> None:
        if self._feed is not None:
            await self._feed.close()


@contextlib.asynccontextmanager
async def nats_runner(
    plan: SweepPlan,
    *,
    url: str | None,
    credentials: Credentials,
    workers: int,
    queue: QueueSettings,
    cache_dir: str,
    jetstream_timeout: float,
    done: Callable[[int], bool],
) -> AsyncIterator[NatsRunner]:
    with contextlib.ExitStack() as stack:
        server = None if url else stack.enter_context(EmbeddedServer())
        address = server.url if server else str(url)
        if server is not None:
            credentials = server.credentials
        broker = await Broker.connect(address, credentials, name="backtester-coordinator")
        try:
            await broker.wait_for_jetstream(jetstream_timeout)
            await broker.ensure_queue(queue)
            local = None
            if workers > 0:
                local = stack.enter_context(
                    LocalWorkers(
                        workers,
                        address,
                        credentials,
                        cache_dir=Path(cache_dir or default_cache_dir()),
                        log_dir=plan.output_dir / "workers",
                        allow_strategies=sweep_strategy_modules(plan.config),
                    )
                )
            runner = NatsRunner(plan, broker, queue, local, done, server)
            await runner.publish_data()
            try:
                yield runner
            finally:
                await runner.close()
        finally:
            await broker.close()


def public_url(url: str) -> str:
    """A server URL without any user:password@ part, fit for a manifest."""
    return without_userinfo(url)
