"""Strategies for sweep tests, imported by workers as `tests.sweep_strategies:Sleepy`."""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec

from backtester.strategies import SmaCross


class SleepyParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    fast: int = 10
    slow: int = 30
    delay_ms: int = 0
    fail_on_fast: int = -1
    crash_on_fast: int = -1
    fail_from_ms: int = -1
    gate: str = ""
    gate_from_fast: int = 0


class Sleepy(SmaCross):
    """SmaCross that takes at least `delay_ms` per run (so a test can kill a worker mid-job) and
    raises when `fast == fail_on_fast` (a run that fails every time) or when its first bar opens at
    `fail_from_ms` (epoch milliseconds: the runs of one walk-forward window fail), or ends its whole
    process when `fast == crash_on_fast` (a run that kills every worker that takes it). With `gate`
    (a file path), a run with `fast >= gate_from_fast` first waits until that file exists, so a test
    decides when runs may finish instead of racing them (bounded: `GATE_TIMEOUT_S`)."""

    Params = SleepyParams  # type: ignore[assignment]

    def on_start(self) -> None:
        p: SleepyParams = self.params  # type: ignore[assignment]
        if p.fast == p.crash_on_fast:
            os._exit(17)
        if p.fast == p.fail_on_fast:
            raise RuntimeError(f"failing on purpose at fast={p.fast}")
        first_ms = int(self.ctx.data[self.ctx.primary]["ts"][0]) // 1_000_000  # ns
        if first_ms == p.fail_from_ms:
            raise RuntimeError(f"failing on purpose from {first_ms} ms")
        if p.gate and p.fast >= p.gate_from_fast:
            wait_for_file(Path(p.gate))
        time.sleep(p.delay_ms / 1000)
        super().on_start()


GATE_TIMEOUT_S = 120.0


def wait_for_file(path: Path) -> None:
    deadline = time.monotonic() + GATE_TIMEOUT_S
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {path} not opened within {GATE_TIMEOUT_S:.0f}s")
        time.sleep(0.01)
