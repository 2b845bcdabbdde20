"""The message bus: FIFO drain to quiescence, delivery order, the step cap, failing handlers, deliver().

The lane for subscribers that must see settled state is changing shape on main (defer -> settled
subscriptions); its ordering is covered end to end by the fill-rule and notebook tests instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from backtester.core.bus import (
    BusError,
    HandlerFailed,
    MessageBus,
    StepLimitExceeded,
    Subscription,
)
from backtester.core.clock import SimClock


@dataclass(frozen=True)
class Ping:
    n: int


@dataclass(frozen=True)
class Pong:
    n: int


def chain_bus(log: list[str], depth: int = 2) -> MessageBus:
    """Ping(n) is seen by two handlers; the first answers Pong(n) and, below `depth`, Ping(n + 1)."""
    bus = MessageBus()

    def first(ping: Ping) -> None:
        log.append(f"first:{ping.n}")
        bus.publish(Pong(ping.n))
        if ping.n < depth:
            bus.publish(Ping(ping.n + 1))

    def second(ping: Ping) -> None:
        log.append(f"second:{ping.n}")

    def pong(message: Pong) -> None:
        log.append(f"pong:{message.n}")

    bus.subscribe(Ping, first)
    bus.subscribe(Ping, second)
    bus.subscribe(Pong, pong)
    return bus


def test_drain_delivers_fifo_until_quiescent_and_counts_steps() -> None:
    log: list[str] = []
    bus = chain_bus(log)
    bus.publish(Ping(0))
    steps = bus.drain()
    assert log == [
        "first:0",
        "second:0",
        "pong:0",
        "first:1",
        "second:1",
        "pong:1",
        "first:2",
        "second:2",
        "pong:2",
    ]
    assert steps == 6
    assert bus.pending == 0
    assert bus.drain() == 0


def test_messages_published_before_drain_are_delivered_in_publish_order() -> None:
    log: list[str] = []
    bus = MessageBus()
    bus.subscribe(Ping, lambda m: log.append(f"ping:{m.n}"))
    bus.subscribe(Pong, lambda m: log.append(f"pong:{m.n}"))
    for message in (Pong(1), Ping(2), Pong(3), Ping(4)):
        bus.publish(message)
    assert bus.pending == 4
    bus.drain()
    assert log == ["pong:1", "ping:2", "pong:3", "ping:4"]


def test_subscription_order_is_delivery_order() -> None:
    log: list[str] = []
    bus = MessageBus()

    def recorder(name: str) -> Callable[[Ping], None]:
        return lambda _: log.append(name)

    for name in ("c", "a", "b"):
        bus.subscribe(Ping, recorder(name))
    bus.publish(Ping(0))
    bus.drain()
    assert log == ["c", "a", "b"]


def test_message_without_subscribers_is_dropped_silently() -> None:
    bus = MessageBus()
    bus.publish(Ping(0))
    assert bus.drain() == 1
    assert bus.pending == 0


def test_subscription_is_by_exact_type() -> None:
    @dataclass(frozen=True)
    class SpecialPing(Ping):
        pass

    log: list[int] = []
    bus = MessageBus()
    bus.subscribe(Ping, lambda m: log.append(m.n))
    bus.publish(SpecialPing(1))
    bus.publish(Ping(2))
    bus.drain()
    assert log == [2]


def test_handler_republishing_forever_hits_the_step_cap() -> None:
    bus = MessageBus(max_steps=50)
    bus.subscribe(Ping, lambda m: bus.publish(Ping(m.n + 1)))
    bus.publish(Ping(0))
    with pytest.raises(StepLimitExceeded, match=r"drain exceeded 50 steps.*Ping"):
        bus.drain()
    assert bus.pending == 0  # the queue is cleared: the run is over


def test_step_cap_allows_exactly_max_steps() -> None:
    bus = MessageBus(max_steps=5)
    bus.subscribe(Ping, lambda m: bus.publish(Ping(m.n + 1)) if m.n < 4 else None)
    bus.publish(Ping(0))
    assert bus.drain() == 5


def test_handler_exception_aborts_the_drain_naming_handler_and_message() -> None:
    log: list[str] = []
    bus = MessageBus()

    def explode(ping: Ping) -> None:
        raise ValueError(f"bad ping {ping.n}")

    bus.subscribe(Ping, explode)
    bus.subscribe(Ping, lambda m: log.append("after"))
    bus.publish(Ping(7))
    bus.publish(Ping(8))
    with pytest.raises(HandlerFailed) as failure:
        bus.drain()
    error = failure.value
    assert "explode" in error.handler_name
    assert error.message == Ping(7)
    assert isinstance(error.__cause__, ValueError)
    text = str(error)
    assert "explode" in text
    assert "failed on Ping: ValueError: bad ping 7" in text
    assert "Ping(n=7)" in text
    assert log == []  # later handlers and queued messages never ran
    assert bus.pending == 0


def test_handler_failure_inside_deliver_is_reported_the_same_way() -> None:
    bus = MessageBus()

    def explode(ping: Ping) -> None:
        raise KeyError(ping.n)

    bus.subscribe(Ping, explode)
    with pytest.raises(HandlerFailed, match="explode failed on Ping: KeyError"):
        bus.deliver(Ping(1))


def test_deliver_equals_publish_then_drain() -> None:
    delivered: list[str] = []
    drained: list[str] = []
    direct = chain_bus(delivered, depth=3)
    queued = chain_bus(drained, depth=3)
    for n in (0, 2):
        direct.deliver(Ping(n))
        queued.publish(Ping(n))
        queued.drain()
    assert delivered == drained
    assert len(delivered) == 18  # pings 0..3, then 2..3: three entries each


def test_deliver_refuses_a_bus_that_is_not_drained() -> None:
    bus = MessageBus()
    bus.publish(Ping(0))
    with pytest.raises(BusError, match="drained bus"):
        bus.deliver(Ping(1))


def test_settled_subscriber_runs_after_everything_the_message_caused() -> None:
    log: list[str] = []
    bus = chain_bus(log, depth=1)
    bus.subscribe(Ping, lambda ping: log.append(f"settled:{ping.n}"), settled=True)
    bus.deliver(Ping(0))
    assert log == [
        "first:0",
        "second:0",
        "pong:0",
        "first:1",
        "second:1",
        "pong:1",
        "settled:0",
        "settled:1",
    ]


def test_settled_subscriber_is_called_at_once_when_nothing_is_pending() -> None:
    log: list[str] = []
    bus = MessageBus()
    bus.subscribe(Ping, lambda ping: log.append(f"plain:{ping.n}"))
    bus.subscribe(Ping, lambda ping: log.append(f"settled:{ping.n}"), settled=True)
    bus.deliver(Ping(0))
    assert log == ["plain:0", "settled:0"]


def test_paused_subscription_is_skipped_and_resumes_in_its_original_place() -> None:
    log: list[str] = []
    bus = MessageBus()
    first = bus.subscribe(Ping, lambda ping: log.append(f"a:{ping.n}"))
    bus.subscribe(Ping, lambda ping: log.append(f"b:{ping.n}"))
    first.pause()
    bus.deliver(Ping(0))
    first.resume()
    bus.deliver(Ping(1))
    assert log == ["b:0", "a:1", "b:1"]


def test_settled_handler_failure_is_reported_with_context() -> None:
    bus = MessageBus()

    def broken(ping: Ping) -> None:
        raise ValueError("boom")

    bus.subscribe(Ping, lambda ping: bus.publish(Pong(ping.n)))
    bus.subscribe(Ping, broken, settled=True)
    with pytest.raises(HandlerFailed, match="broken failed on Ping: ValueError: boom"):
        bus.deliver(Ping(3))
    assert bus.pending == 0


def switching_bus(log: list[str]) -> MessageBus:
    """Pings go to a settled handler alone until Ping(2), which resumes a paused plain handler
    (it publishes a Pong, so the settled one waits for it) until Ping(4) pauses it again; a Pong
    in the stream is another type between the pings."""
    bus = MessageBus()
    subscriptions: dict[str, Subscription] = {}

    def plain(ping: Ping) -> None:
        log.append(f"plain:{ping.n}")
        bus.publish(Pong(ping.n))

    def settled(ping: Ping) -> None:
        log.append(f"settled:{ping.n}")
        if ping.n == 2:
            subscriptions["plain"].resume()
        if ping.n == 4:
            subscriptions["plain"].pause()

    def pong(message: Pong) -> None:
        log.append(f"pong:{message.n}")

    subscriptions["plain"] = bus.subscribe(Ping, plain)
    subscriptions["plain"].pause()
    bus.subscribe(Ping, settled, settled=True)
    bus.subscribe(Pong, pong)
    return bus


def test_deliver_each_equals_deliver_per_message_while_handlers_change() -> None:
    stream: list[Ping | Pong] = [Ping(0), Ping(1), Pong(9), Ping(2), Ping(3), Ping(4), Ping(5)]
    each: list[str] = []
    one_by_one: list[str] = []
    count = switching_bus(each).deliver_each(SimClock(), ((0, m) for m in stream))
    single = switching_bus(one_by_one)
    for message in stream:
        single.deliver(message)
    assert count == len(stream)
    assert each == one_by_one
    assert each == [
        "settled:0",
        "settled:1",
        "pong:9",
        "settled:2",
        "plain:3",
        "pong:3",
        "settled:3",
        "plain:4",
        "pong:4",
        "settled:4",
        "settled:5",
    ]


def test_deliver_each_reports_a_failing_lone_settled_handler() -> None:
    bus = MessageBus()

    def broken(ping: Ping) -> None:
        if ping.n == 1:
            raise ValueError("boom")

    bus.subscribe(Ping, broken, settled=True)
    with pytest.raises(HandlerFailed, match="broken failed on Ping: ValueError: boom"):
        bus.deliver_each(SimClock(), [(0, Ping(0)), (1, Ping(1))])
