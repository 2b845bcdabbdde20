"""Strategies for sweep tests, imported by workers as `tests.sweep_strategies:Sleepy`."""

from __future__ import annotations

import os
import time

import msgspec

from backtester.strategies import SmaCross


class SleepyParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    fast: int = 10
    slow: int = 30
    delay_ms: int = 0
    fail_on_fast: int = -1
    crash_on_fast: int = -1
    fail_from_ms: int = -1


class Sleepy(SmaCross):
    """SmaCross that takes at least `delay_ms` per run (so a test can kill a worker mid-job) and
    raises when `fast == fail_on_fast` (a run that fails every time) or when its first bar opens at
    `fail_from_ms` (epoch milliseconds: the runs of one walk-forward window fail), or ends its whole
    process when `fast == crash_on_fast` (a run that kills every worker that takes it)."""

    Params = SleepyParams  # type: ignore[assignment]

    def on_start(self) -> None:
        if self.params.fast == self.params.crash_on_fast:  # type: ignore[attr-defined]
            os._exit(17)
        if self.params.fast == self.params.fail_on_fast:  # type: ignore[attr-defined]
            raise RuntimeError(f"failing on purpose at fast={self.params.fast}")
        first_ms = int(self.ctx.data[self.ctx.primary]["ts"][0]) // 1_000_000  # ns
        if first_ms == self.params.fail_from_ms:  # type: ignore[attr-defined]
            raise RuntimeError(f"failing on purpose from {first_ms} ms")
        time.sleep(self.params.delay_ms / 1000)  # type: ignore[attr-defined]
        super().on_start()
