"""A worker given a job planned with other code than its own hands the job back while other
deliveries remain (another worker may run that code), and on the last one reports it failed with
the reason: a coordinator whose local workers started from a source tree changed after planning
must not see every point end as 'no result after N deliveries' without saying why. A worker stopped
while connecting ends its connect even when a cancellation is swallowed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import BinaryIO

from backtester.manifest import package_sha256
from backtester.sweep.execute import decode_spec
from backtester.sweep.spec import DataRef, ExecuteRun, RunFailed, decode_report, encode
from backtester.sweep.worker import DECLINE_DELAY, Worker, WorkerOptions, _cancelled
from tests.sweep_support import GOLDEN


class _Delivery:
    def __init__(self, data: bytes, attempt: int) -> None:
        self.data = data
        self.attempt = attempt
        self.calls: list[tuple[str, float | None]] = []

    async def ack(self) -> None:
        self.calls.append(("ack", None))

    async def retry(self, delay: float) -> None:
        self.calls.append(("retry", delay))

    async def reject(self) -> None:
        self.calls.append(("reject", None))

    async def in_progress(self) -> None:
        self.calls.append(("in_progress", None))


class _Broker:
    def __init__(self) -> None:
        self.results: list[bytes] = []

    async def publish_result(self, sweep_id: str, run_id: str, payload: bytes) -> bool:
        self.results.append(payload)
        return False

    async def get_file(self, name: str, into: BinaryIO) -> None:
        raise AssertionError("a refused job fetches no data")


def _job(code_sha256: str) -> bytes:
    spec = decode_spec(
        {
            "seed": 0,
            "data": [{"kind": "file", "path": str(GOLDEN), "symbol": "BTC/USDT"}],
            "strategy": {"name": "SmaCross"},
        }
    )
    ref = DataRef(symbol="BTC/USDT", sha256="0" * 64, size=1, suffix=".parquet")
    job = ExecuteRun(
        sweep_id="s1",
        index=0,
        run_id="r1",
        spec=spec,
        data=[ref],
        code_sha256=code_sha256,
        max_deliver=3,
        ack_wait=30.0,
    )
    return encode(job)


def _handle(tmp_path: Path, attempt: int) -> tuple[_Delivery, _Broker]:
    broker = _Broker()
    options = WorkerOptions(url="nats://127.0.0.1:9", cache_dir=str(tmp_path), name="w1")
    worker = Worker(broker, options, asyncio.Event())  # type: ignore[arg-type]
    delivery = _Delivery(_job("f" * 64), attempt)

    async def handle() -> None:
        await worker.handle(delivery)  # type: ignore[arg-type]
        await worker.reported()

    asyncio.run(handle())
    return delivery, broker


def test_a_job_planned_with_other_code_is_handed_back_then_reported_failed_on_its_last_delivery(
    tmp_path: Path,
) -> None:
    assert package_sha256() != "f" * 64
    delivery, broker = _handle(tmp_path, attempt=2)
    assert delivery.calls == [("retry", DECLINE_DELAY)]
    assert broker.results == []

    delivery, broker = _handle(tmp_path, attempt=3)
    assert delivery.calls == [("ack", None)]
    (payload,) = broker.results
    report = decode_report(payload)
    assert isinstance(report, RunFailed)
    assert (report.sweep_id, report.index, report.run_id, report.attempt) == ("s1", 0, "r1", 3)
    assert report.error.startswith(
        f"refused by worker w1: this worker runs other code (package sha256 "
        f"{package_sha256()[:16]}) than the sweep was planned with (ffffffffffffffff)"
    )


def test_a_connect_that_swallows_its_cancellation_is_cancelled_again_until_it_ends() -> None:
    # As nats-py's connect does when the cancellation lands in its flush: it goes on to its
    # next attempt, which would keep a worker stopped while connecting alive for its timeouts.
    attempts: list[str] = []

    async def stubborn() -> None:
        for attempt in ("first", "second", "third"):
            attempts.append(attempt)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(60)

    async def stop_it() -> float:
        task = asyncio.ensure_future(stubborn())
        await asyncio.sleep(0)
        started = time.monotonic()
        await _cancelled(task)
        return time.monotonic() - started

    assert asyncio.run(stop_it()) < 30  # not the 60 s of a single attempt
    assert attempts == ["first", "second", "third"]
