"""The tick-and-drain loop: at each timestamp publish the market event, then drain everything it causes
before the clock moves on."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from backtester.core.bus import MessageBus
from backtester.core.clock import SimClock


def tick_and_drain(
    clock: SimClock, bus: MessageBus, timestamps: Iterable[int], events: Iterable[object]
) -> int:
    """Run the feed (`timestamps[i]` is when `events[i]` happens, non-decreasing); returns events run."""
    return bus.deliver_each(clock, zip(timestamps, events, strict=True))


def tick_and_drain_sparse(
    clock: SimClock,
    bus: MessageBus,
    rows: int,
    time_at: Callable[[int], int],
    event_at: Callable[[int], object],
    next_index: Callable[[int], int],
    scheduled: Sequence[tuple[int, int, object]] = (),
) -> int:
    """Visit only the rows some module needs: `next_index(i)` is the first row after `i` where a
    subscriber can act (`rows` or more: none); row `i` happens at `time_at(i)` (non-decreasing).
    Each visit is a full tick-and-drain, so a run that skips rows nobody needs is identical to one
    that visits them all.

    `scheduled` holds (row, tick time, event), ascending by row: events that must be delivered just
    before row `row` (`len(timestamps)`: after the last), visited or not. What they change may make
    an earlier row needed, so the next row is asked again after them."""
    advance = clock.advance_to
    deliver = bus.deliver
    end = rows
    count = 0
    done = -1  # every row up to here is handled
    k = 0
    pending = len(scheduled)
    while True:
        i = next_index(done)
        if k < pending and scheduled[k][0] <= i:
            row = scheduled[k][0]
            while k < pending and scheduled[k][0] == row:
                _, tick, event = scheduled[k]
                advance(tick)
                deliver(event)
                count += 1
                k += 1
            done = row - 1
            continue
        if i >= end:
            return count
        ts = time_at(i)
        if ts < clock.now:
            advance(ts)  # refuses, with the clock's own error
        clock.now = ts
        deliver(event_at(i))
        count += 1
        done = i


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the loop.

    The loop allocates millions of short-lived objects; each collection would also rescan the large,
    long-lived feed lists, which costs about a fifth of a run. Reference counting still frees everything
    that is not in a cycle, so memory stays flat; the collector, once re-enabled, finds any cycles a
    strategy made (a forced full collection here would cost more than a short run itself).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
