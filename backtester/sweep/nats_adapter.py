"""The only module that imports `nats`: JetStream streams, the shared worker consumer, the data
object store. Payloads are opaque bytes here; the sweep messages are encoded elsewhere.

Layout on the server (shared by every sweep that uses it):
- stream BACKTESTER_JOBS, work-queue retention, subject `backtester.jobs.<sweep_id>`: one message per
  run, `Nats-Msg-Id` = `<sweep_id>.<run_id>`; a durable pull consumer `backtester-workers` that every
  worker binds to (explicit ack, `ack_wait`, `max_deliver`);
- stream BACKTESTER_RESULTS, limits retention, subject `backtester.results.<sweep_id>`, the same
  message ids, so a result published twice (a redelivered job) is stored once;
- object store bucket `backtester-data`: input files, named by their sha256;
- stream BACKTESTER_DEAD_JOBS: the server's advisories for jobs it stopped redelivering
  (`max_deliver` reached), kept so a coordinator that was down at the time still learns of them.
Message ids carry the sweep id because two sweeps may contain the very same run; with bare run ids
the second sweep's jobs would be dropped as duplicates of the first's.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import nats
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.client import JetStreamContext

from backtester.data.redaction import redact

log = structlog.get_logger("backtester.sweep.nats")

JOBS_STREAM = "BACKTESTER_JOBS"
RESULTS_STREAM = "BACKTESTER_RESULTS"
WORKERS = "backtester-workers"
DATA_BUCKET = "backtester-data"
DEAD_STREAM = "BACKTESTER_DEAD_JOBS"
_MAX_DELIVERIES = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{JOBS_STREAM}.{WORKERS}"

BrokerError = nats.errors.Error


class Credentials(msgspec.Struct, frozen=True):
    """How to authenticate; every field optional. TLS is used when a CA, a client certificate or a
    `tls://` URL is given."""

    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds_file: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None


class QueueSettings(msgspec.Struct, frozen=True):
    ack_wait: float = 30.0
    max_deliver: int = 3
    max_ack_pending: int = 1000
    # Must cover a first result and the re-publish of a redelivered job (ack_wait x max_deliver).
    duplicate_window: float = 3600.0
    result_max_age: float = 7 * 86400.0


class Delivery:
    """A job message handed to a worker."""

    def __init__(self, msg: Msg) -> None:
        self._msg = msg
        self.data = msg.data
        self.attempt = msg.metadata.num_delivered

    async def ack(self) -> None:
        # Not ack_sync: the result was already stored (and confirmed by its stream) before this ack,
        # so an ack the server never gets only means a redelivery whose result the coordinator
        # drops as a duplicate, the same as a worker that died just after reporting. Waiting for
        # the server's confirmation cost a round trip on every run.
        await self._msg.ack()

    async def retry(self, delay: float) -> None:
        await self._msg.nak(delay=delay)

    async def reject(self) -> None:
        await self._msg.term()

    async def in_progress(self) -> None:
        await self._msg.in_progress()


class JobSource:
    def __init__(self, sub: JetStreamContext.PullSubscription) -> None:
        self._sub = sub

    async def next(self, timeout: float) -> Delivery | None:
        try:
            msgs = await self._sub.fetch(batch=1, timeout=timeout)
        except TimeoutError:  # asyncio's; nats.errors.TimeoutError subclasses it
            return None
        return Delivery(msgs[0]) if msgs else None

    async def close(self) -> None:
        await self._sub.unsubscribe()


class ResultFeed:
    """Every result of one sweep, those already stored first, in stream order. `stored` counts the
    results the stream held when the feed was opened.

    The server pushes each result as it is stored (an ordered consumer, which recreates itself
    after a gap or a lost connection): asking for results would add a request and an empty-batch
    reply per result, work for the server and the coordinator while a worker waits for its
    publish to be acknowledged."""

    def __init__(self, stored: int) -> None:
        self.stored = stored
        self._sub: JetStreamContext.PushSubscription | None = None
        self._received: list[bytes] = []
        self._arrived = asyncio.Event()

    def bind(self, sub: JetStreamContext.PushSubscription) -> None:
        self._sub = sub

    async def deliver(self, msg: Msg) -> None:
        """The subscription's callback."""
        self._received.append(msg.data)
        self._arrived.set()

    async def next_batch(self, timeout: float) -> list[bytes]:
        """The results received since the last call; waits up to `timeout` for the first."""
        if not self._received:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout)
        batch, self._received = self._received, []
        self._arrived.clear()
        return batch

    async def close(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()


class Broker:
    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self.closing = False

    @classmethod
    async def connect(
        cls, url: str, credentials: Credentials | None = None, *, name: str = "backtester"
    ) -> Broker:
        """Connect, giving up after a few attempts per server; once connected, reconnect forever,
        so a worker rides out a server restart or a failover within its cluster. Refused
        credentials and a certificate that does not verify end the attempt at once: retrying
        cannot fix either, and nats-py would otherwise keep trying (or wait) for minutes."""
        shown = redact(url)
        options = _connect_options(url, credentials or Credentials())
        fatal: list[Exception] = []
        stop = asyncio.Event()
        closing: list[Broker] = []

        async def error(exc: Exception) -> None:
            log.warning("nats.error", error=redact(str(exc) or type(exc).__name__))
            if not closing and _refusal(exc) is not None:
                fatal.append(exc)
                stop.set()

        async def disconnected() -> None:
            if not closing or not closing[0].closing:
                log.warning("nats.disconnected")

        async def reconnected() -> None:
            log.info("nats.reconnected")

        nc = Client()
        attempt = asyncio.ensure_future(
            nc.connect(
                url.split(","),
                name=name,
                connect_timeout=5,
                reconnect_time_wait=1,
                max_reconnect_attempts=2,
                error_cb=error,
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                **options,
            )
        )
        refused = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({attempt, refused}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            refused.cancel()
            if not attempt.done():
                attempt.cancel()
                with contextlib.suppress(BaseException):
                    await attempt
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(nc.close(), 1)
        if fatal:
            raise ConnectionError(f"cannot connect to NATS at {shown}: {_refusal(fatal[0])}")
        try:
            attempt.result()
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            reason = redact(str(exc) or type(exc).__name__)
            raise ConnectionError(f"cannot connect to NATS at {shown}: {reason}") from None
        nc.options["max_reconnect_attempts"] = -1
        broker = cls(nc)
        closing.append(broker)
        return broker

    async def wait_for_jetstream(self, timeout: float) -> None:
        """A fresh cluster answers JetStream requests only once it has elected a metadata leader."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await self._js.account_info()
                return
            except (nats.errors.Error, TimeoutError) as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise ConnectionError(f"JetStream is not available: {exc}") from None
                await asyncio.sleep(0.2)

    async def ensure_queue(self, settings: QueueSettings) -> None:
        """Create or update the streams, the worker consumer and the data bucket (idempotent)."""
        await self._upsert_stream(
            StreamConfig(
                name=JOBS_STREAM,
                subjects=["backtester.jobs.>"],
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
                duplicate_window=settings.duplicate_window,
            )
        )
        await self._upsert_stream(
            StreamConfig(
                name=RESULTS_STREAM,
                subjects=["backtester.results.>"],
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                max_age=settings.result_max_age,
                duplicate_window=settings.duplicate_window,
            )
        )
        await self._upsert_stream(
            StreamConfig(
                name=DEAD_STREAM,
                subjects=[_MAX_DELIVERIES],
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                max_age=settings.result_max_age,
            )
        )
        await self._js.add_consumer(
            JOBS_STREAM,
            ConsumerConfig(
                durable_name=WORKERS,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=settings.ack_wait,
                max_deliver=settings.max_deliver,
                max_ack_pending=settings.max_ack_pending,
                filter_subject="backtester.jobs.>",
            ),
        )
        try:
            await self._js.object_store(DATA_BUCKET)
        except nats.js.errors.BucketNotFoundError:
            await self._js.create_object_store(DATA_BUCKET, storage=StorageType.FILE)

    async def _upsert_stream(self, config: StreamConfig) -> None:
        try:
            await self._js.stream_info(str(config.name))
        except nats.js.errors.NotFoundError:
            await self._js.add_stream(config)
            return
        await self._js.update_stream(config)

    async def bind_workers(self) -> JobSource | None:
        """The shared job consumer, or None while no coordinator has created it yet."""
        try:
            await self._js.consumer_info(JOBS_STREAM, WORKERS)
        except nats.js.errors.NotFoundError:
            return None
        except (nats.errors.Error, TimeoutError) as exc:  # e.g. a cluster electing its leader
            log.warning("queue.unavailable", error=str(exc) or type(exc).__name__)
            return None
        return JobSource(await self._js.pull_subscribe_bind(WORKERS, stream=JOBS_STREAM))

    async def publish_job(self, sweep_id: str, run_id: str, payload: bytes) -> tuple[int, bool]:
        """(stream sequence, whether the server already had this job)."""
        ack = await self._js.publish(
            f"backtester.jobs.{sweep_id}",
            payload,
            headers={"Nats-Msg-Id": f"{sweep_id}.{run_id}"},
        )
        return ack.seq, bool(ack.duplicate)

    async def publish_result(self, sweep_id: str, run_id: str, payload: bytes) -> bool:
        """Publish a result; True when an earlier delivery's result was already stored."""
        ack = await self._js.publish(
            f"backtester.results.{sweep_id}",
            payload,
            headers={"Nats-Msg-Id": f"{sweep_id}.{run_id}"},
        )
        return bool(ack.duplicate)

    async def results(self, sweep_id: str) -> ResultFeed:
        subject = f"backtester.results.{sweep_id}"
        info = await self._js.stream_info(RESULTS_STREAM, subjects_filter=subject)
        feed = ResultFeed(int((info.state.subjects or {}).get(subject, 0)))
        sub = await self._js.subscribe(
            subject,
            stream=RESULTS_STREAM,
            cb=feed.deliver,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )
        feed.bind(sub)
        return feed

    async def on_max_deliveries(self, handler: Callable[[int], Awaitable[None]]) -> None:
        """Call `handler(stream_seq)` for each job the server gave up redelivering: every one
        recorded so far, then each new one."""

        async def advisory(msg: Msg) -> None:
            try:
                seq = int(json.loads(msg.data)["stream_seq"])
            except (ValueError, KeyError, TypeError):
                return
            await handler(seq)

        await self._js.subscribe(
            _MAX_DELIVERIES, stream=DEAD_STREAM, ordered_consumer=True, cb=advisory
        )

    async def delete_job(self, seq: int) -> None:
        # Already gone when acked meanwhile, or deleted by another coordinator.
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self._js.delete_msg(JOBS_STREAM, seq)

    async def has_file(self, name: str) -> bool:
        store = await self._js.object_store(DATA_BUCKET)
        try:
            await store.get_info(name)
        except nats.js.errors.ObjectNotFoundError:
            return False
        return True

    async def put_file(self, name: str, path: Path) -> None:
        store = await self._js.object_store(DATA_BUCKET)
        with path.open("rb") as handle:
            await store.put(name, handle)

    async def get_file(self, name: str, into: BinaryIO) -> None:
        """Stream an object into `into`; the object store checks its own chunk digest on the way."""
        store = await self._js.object_store(DATA_BUCKET)
        try:
            await store.get(name, writeinto=into)  # type: ignore[arg-type]
        except nats.js.errors.ObjectNotFoundError:
            raise FileNotFoundError(f"{name} is not in the {DATA_BUCKET} object store") from None

    async def close(self) -> None:
        """Flush and close, in bounded time even with the server gone: a stopping process must
        exit within seconds."""
        self.closing = True
        if self._nc.is_closed:
            return
        if self._nc.is_connected:
            with contextlib.suppress(Exception):
                await self._nc.flush(timeout=1)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._nc.close(), 1.5)


def _refusal(exc: BaseException) -> str | None:
    """Why the server cannot be used with these settings, if `exc` says so."""
    if (
        isinstance(exc, nats.errors.AuthorizationError)
        or "authorization violation" in str(exc).lower()
    ):
        return (
            "authorization failed: the server refused the credentials (check --user and "
            "--password, --token or --creds, or their BACKTESTER_NATS_* variables)"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate verification failed: {exc.verify_message}; give the CA that "
            "signed the server's certificate with --tls-ca"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    return None


def _connect_options(url: str, credentials: Credentials) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if credentials.user is not None:
        options["user"] = credentials.user
        options["password"] = credentials.password or ""
    if credentials.token is not None:
        options["token"] = credentials.token
    if credentials.creds_file is not None:
        if not Path(credentials.creds_file).is_file():
            raise ConnectionError(f"credentials file not found: {credentials.creds_file}")
        if importlib.util.find_spec("nkeys") is None:  # nats-py signs with it, imported lazily
            raise ConnectionError(
                "a creds file needs the nkeys package: pip install 'nats-py[nkeys]'"
            )
        options["user_credentials"] = credentials.creds_file
    wants_tls = url.startswith("tls://") or credentials.tls_ca or credentials.tls_cert
    if wants_tls:
        context = ssl.create_default_context(cafile=credentials.tls_ca)
        if credentials.tls_cert:
            context.load_cert_chain(credentials.tls_cert, credentials.tls_key)
        options["tls"] = context
    return options
