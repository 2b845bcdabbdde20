"""The simulation clock: monotonic, advanced only by the loop."""

from __future__ import annotations

import pytest

from backtester.core.bus import MessageBus
from backtester.core.clock import ClockError, SimClock
from backtester.core.loop import tick_and_drain


def test_clock_starts_where_told_and_advances_forward() -> None:
    clock = SimClock(start_ns=1_000)
    assert clock.now == 1_000
    clock.advance_to(1_500)
    assert clock.now == 1_500


def test_clock_may_stay_on_the_same_timestamp() -> None:
    clock = SimClock(start_ns=10)
    clock.advance_to(10)
    clock.advance_to(10)
    assert clock.now == 10


def test_clock_refuses_to_go_backwards_and_keeps_its_time() -> None:
    clock = SimClock(start_ns=2_000)
    with pytest.raises(ClockError, match="backwards: 1999 < 2000"):
        clock.advance_to(1_999)
    assert clock.now == 2_000


def test_loop_sets_the_clock_to_each_event_time_before_delivering_it() -> None:
    clock = SimClock(start_ns=0)
    bus = MessageBus()
    seen: list[tuple[int, str]] = []
    bus.subscribe(str, lambda event: seen.append((clock.now, event)))
    count = tick_and_drain(clock, bus, [5, 5, 9], ["a", "b", "c"])
    assert count == 3
    assert seen == [(5, "a"), (5, "b"), (9, "c")]


def test_loop_aborts_on_a_timestamp_that_goes_back() -> None:
    clock = SimClock(start_ns=0)
    bus = MessageBus()
    with pytest.raises(ClockError):
        tick_and_drain(clock, bus, [5, 4], ["a", "b"])
    assert clock.now == 5
