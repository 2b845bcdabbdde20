"""The simulation clock: the only source of time inside the engine."""

from __future__ import annotations


class ClockError(RuntimeError):
    pass


class SimClock:
    """Monotonic int64 UTC-nanosecond clock that the loop advances; it never reads the wall clock."""

    __slots__ = ("now",)

    def __init__(self, start_ns: int = 0) -> None:
        self.now = start_ns

    def advance_to(self, ts_ns: int) -> None:
        if ts_ns < self.now:
            raise ClockError(f"clock cannot move backwards: {ts_ns} < {self.now}")
        self.now = ts_ns
