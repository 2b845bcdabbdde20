"""The messages a sweep sends over the wire: a job (`ExecuteRun`) and its outcome (`RunCompleted` or
`RunFailed`). msgpack, so NaN and infinite statistics survive the trip.

Versioning: the `kind` tag carries the version (`execute_run/1`). A compatible change adds a field
with a default (older readers ignore unknown fields); an incompatible one is a new tag, which an
older worker rejects as malformed instead of misreading.
"""

from __future__ import annotations

from typing import Any

import msgspec

from backtester.sweep.execute import RunSpec

Stat = str | int | float | bool | None


class DataRef(msgspec.Struct, frozen=True):
    """An input file in the object store: fetched by `sha256`, loaded as `suffix` (.parquet, .csv)."""

    symbol: str
    sha256: str
    size: int
    suffix: str


class SweepMessage(msgspec.Struct, frozen=True, tag_field="kind"):
    pass


class ExecuteRun(SweepMessage, frozen=True, tag="execute_run/1"):
    """Run `spec` and report. `max_deliver` tells the worker which delivery is the last one, when a
    failure must be reported rather than retried; `ack_wait` how often to say a long run is still
    in progress; `code_sha256` is the code the coordinator planned
    with, so a worker running other code declines the job instead of computing another result."""

    sweep_id: str
    index: int
    run_id: str
    spec: RunSpec
    data: list[DataRef]
    code_sha256: str
    max_deliver: int
    ack_wait: float


class RunCompleted(SweepMessage, frozen=True, tag="run_completed/1"):
    """`returns`: the run's period returns, for the sweep's overfitting statistics."""

    sweep_id: str
    index: int
    run_id: str
    digest: str
    stats: dict[str, Stat]
    worker: str = ""
    attempt: int = 1
    seconds: float = 0.0
    returns: list[float] = []


class RunFailed(SweepMessage, frozen=True, tag="run_failed/1"):
    sweep_id: str
    index: int
    run_id: str
    error: str
    worker: str = ""
    attempt: int = 1


RunReport = RunCompleted | RunFailed

_encoder = msgspec.msgpack.Encoder()
_job_decoder = msgspec.msgpack.Decoder(ExecuteRun)
_report_decoder = msgspec.msgpack.Decoder(RunReport)


class MalformedMessage(ValueError):
    """A message that does not decode; the reason says what is wrong with it."""


def encode(message: SweepMessage) -> bytes:
    return _encoder.encode(message)


def decode_job(data: bytes) -> ExecuteRun:
    try:
        return _job_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise MalformedMessage(f"job: {exc}") from None


def decode_report(data: bytes) -> RunReport:
    try:
        report: RunReport = _report_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise MalformedMessage(f"result: {exc}") from None
    return report


def plain_stats(stats: dict[str, Any]) -> dict[str, Stat]:
    """Statistics as wire values; anything else (a numpy scalar, a timestamp) becomes its text."""
    out: dict[str, Stat] = {}
    for key, raw in stats.items():
        value = raw.item() if hasattr(raw, "item") else raw  # numpy scalars, float64 included
        out[key] = value if value is None or isinstance(value, str | int | float) else str(value)
    return out
