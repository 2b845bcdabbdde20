"""Test support: hand-built bar frames, scripted strategies, and a run whose modules stay observable.

A scripted strategy runs given actions at given bar indices; each action receives the strategy and may
submit or cancel orders. `observed_engine` builds the real engine and keeps its bus, venue, ledger and recorder at hand, with a
count of every terminal answer on the bus. `message_stream` runs an engine with an observer of every
message type and hashes what it saw, in delivery order.
"""

from __future__ import annotations

import hashlib
import inspect
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
import polars as pl

from backtester import Backtest, RunResult, Strategy
from backtester.domain import messages
from backtester.domain.messages import (
    Bar,
    OrderCanceled,
    OrderCancelRejected,
    OrderDenied,
    OrderExpired,
    OrderFilled,
)
from backtester.engine import Engine

T0_MS = 1_700_000_000_000
BAR_MS = 60_000
NS_PER_MS = 1_000_000

Row = tuple[float, float, float, float, float]  # open, high, low, close, volume
Action = Callable[[Strategy[Any]], object]


def bars_frame(rows: Sequence[Row]) -> pl.DataFrame:
    """One-minute bars from (open, high, low, close, volume) rows, starting at T0_MS."""
    return pl.DataFrame(
        {
            "timestamp_ms": [T0_MS + i * BAR_MS for i in range(len(rows))],
            "open": [float(r[0]) for r in rows],
            "high": [float(r[1]) for r in rows],
            "low": [float(r[2]) for r in rows],
            "close": [float(r[3]) for r in rows],
            "volume": [float(r[4]) for r in rows],
        }
    )


def bar_ns(index: int) -> int:
    """The timestamp (ns) of bar `index` of a frame built by `bars_frame`."""
    return (T0_MS + index * BAR_MS) * NS_PER_MS


def scripted(script: Mapping[int, Sequence[Action]]) -> type[Strategy[Any]]:
    """A Strategy subclass that runs `script[i]` (in order) while handling bar `i`."""

    class Scripted(Strategy[Any]):
        def on_start(self) -> None:
            self.fills_seen: list[OrderFilled] = []
            self.positions_seen: list[float] = []

        def on_bar(self, bar: Bar) -> None:
            self.positions_seen.append(self.position)
            for action in script.get(bar.index, ()):
                action(self)

        def on_fill(self, fill: OrderFilled) -> None:
            self.fills_seen.append(fill)

    return Scripted


def run_script(
    rows: Sequence[Row], script: Mapping[int, Sequence[Action]], **backtest: Any
) -> RunResult:
    return Backtest(bars_frame(rows), scripted(script), **backtest).run()


class Observed:
    """The modules of one event-driven run, and every terminal answer its bus published."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        modules = engine.events
        self.bus = modules.bus
        self.venue = modules.venue
        self.ledger = modules.ledger
        self.recorder = modules.recorder
        self.terminal_answers: Counter[int] = Counter()
        self.cancel_rejections: list[OrderCancelRejected] = []
        self.bus.subscribe(OrderDenied, self.count_terminal)
        self.bus.subscribe(OrderCanceled, self.count_terminal)
        self.bus.subscribe(OrderExpired, self.count_terminal)
        self.bus.subscribe(OrderFilled, self.count_fill)
        self.bus.subscribe(OrderCancelRejected, self.cancel_rejections.append)

    def count_terminal(self, event: OrderDenied | OrderCanceled | OrderExpired) -> None:
        self.terminal_answers[event.order_id] += 1

    def count_fill(self, fill: OrderFilled) -> None:
        if fill.leaves_quantity == 0.0:
            self.terminal_answers[fill.order_id] += 1


def observed_engine(
    rows: Sequence[Row] | pl.DataFrame,
    strategy: type[Strategy[Any]],
    params: dict[str, Any] | None = None,
    **backtest: Any,
) -> Observed:
    """The engine `Backtest(rows, strategy, **backtest)` builds, with counters of terminal answers
    subscribed; call `.engine.run()` to run it."""
    frame = rows if isinstance(rows, pl.DataFrame) else bars_frame(rows)
    bt = Backtest(frame, strategy, **backtest)
    return Observed(bt.engine(**(params or {})))


MESSAGE_TYPES = [
    t
    for _, t in inspect.getmembers(messages, inspect.isclass)
    if issubclass(t, messages.Message) and t is not messages.Message
]


def message_stream(engine: Engine) -> tuple[int, str, RunResult]:
    """Run the engine with one more subscriber to every message type (the last in each type's
    order): the number of messages it saw, the SHA-256 of their encodings in that order, and the
    run's result."""
    digest = hashlib.sha256()
    encode = msgspec.msgpack.Encoder().encode
    count = 0

    def seen(message: object) -> None:
        nonlocal count
        count += 1
        digest.update(encode(message))

    bus = engine.events.bus
    for message_type in MESSAGE_TYPES:
        bus.subscribe(message_type, seen)
    result = engine.run()
    return count, digest.hexdigest(), result
