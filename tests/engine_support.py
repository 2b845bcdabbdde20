"""Test support: hand-built bar frames, scripted strategies, and a run whose modules stay observable.

A scripted strategy runs given actions at given bar indices; each action receives the strategy and may
submit or cancel orders. `observed_run` runs the real composition root (`run_engine`) while keeping
references to the bus, venue, ledger and recorder it builds, and counts every terminal answer on the bus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from unittest import mock

import polars as pl

from backtester import Backtest, RunResult, Strategy, app
from backtester.account.ledger import AccountLedger
from backtester.core.bus import MessageBus
from backtester.domain.messages import (
    Bar,
    OrderCanceled,
    OrderCancelRejected,
    OrderDenied,
    OrderExpired,
    OrderFilled,
)
from backtester.execution.venue import SimulatedVenue
from backtester.recorder import Recorder

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
    """What `observed_run` captured of one run's modules."""

    def __init__(self) -> None:
        self.buses: list[Any] = []
        self.venues: list[Any] = []
        self.ledgers: list[Any] = []
        self.recorders: list[Any] = []
        self.terminal_answers: Counter[int] = Counter()
        self.cancel_rejections: list[OrderCancelRejected] = []

    def count_terminal(self, event: OrderDenied | OrderCanceled | OrderExpired) -> None:
        self.terminal_answers[event.order_id] += 1

    def count_fill(self, fill: OrderFilled) -> None:
        if fill.leaves_quantity == 0.0:
            self.terminal_answers[fill.order_id] += 1


@contextmanager
def observed_run() -> Iterator[Observed]:
    """Patch the composition root's classes with subclasses that record their instances.

    The bus subclass subscribes counters of terminal answers (denied, canceled, expired, and fills
    that leave nothing) before any module subscribes, so they see every answer the run publishes.
    """
    seen = Observed()

    class CountingBus(MessageBus):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            seen.buses.append(self)
            self.subscribe(OrderDenied, seen.count_terminal)
            self.subscribe(OrderCanceled, seen.count_terminal)
            self.subscribe(OrderExpired, seen.count_terminal)
            self.subscribe(OrderFilled, seen.count_fill)
            self.subscribe(OrderCancelRejected, seen.cancel_rejections.append)

    class KeptVenue(SimulatedVenue):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            seen.venues.append(self)

    class KeptLedger(AccountLedger):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            seen.ledgers.append(self)

    class KeptRecorder(Recorder):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            seen.recorders.append(self)

    with (
        mock.patch.object(app, "MessageBus", CountingBus),
        mock.patch.object(app, "SimulatedVenue", KeptVenue),
        mock.patch.object(app, "AccountLedger", KeptLedger),
        mock.patch.object(app, "Recorder", KeptRecorder),
    ):
        yield seen
