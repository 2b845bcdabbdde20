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
    advance = clock.advance_to
    deliver = bus.deliver
    count = 0
    for ts, event in zip(timestamps, events, strict=True):
        advance(ts)
        deliver(event)
        count += 1
    return count


def tick_and_drain_sparse(
    clock: SimClock,
    bus: MessageBus,
    timestamps: Sequence[int],
    event_at: Callable[[int], object],
    next_index: Callable[[int], int],
) -> int:
    """Visit only the rows some module needs: `next_index(i)` is the first row after `i` where a
    subscriber can act (`len(timestamps)` or more: none). Each visit is a full tick-and-drain, so a
    run that skips rows nobody needs is identical to one that visits them all."""
    advance = clock.advance_to
    deliver = bus.deliver
    end = len(timestamps)
    count = 0
    i = next_index(-1)
    while i < end:
        advance(timestamps[i])
        deliver(event_at(i))
        count += 1
        i = next_index(i)
    return count


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
