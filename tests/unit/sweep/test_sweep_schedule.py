"""The coordinator's sliding window over a search: at most `batch` points in flight, each point
asked right after the tell that allows it (not once a whole batch is in), and the sequence of asks
and tells, so the trials, a function of the seed and the batch alone: the same whatever order the
results come back in."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backtester.sweep.coordinator import Collector, _drive, _Session
from backtester.sweep.plan import PlannedRun, SweepPlan
from backtester.sweep.progress import Progress
from backtester.sweep.results import JOURNAL, Journal
from backtester.sweep.spec import RunCompleted, RunReport, encode
from backtester.sweep.study import OptunaSearch
from tests.sweep_support import small_data
from tests.unit.sweep.test_sweep_study import plan_for

BATCH = 6
Event = tuple[str, int, int]  # ("ask" | "tell", point, points told before it)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_data(tmp_path_factory.mktemp("schedule") / "bars.parquet", rows=300)


class ShuffledRunner:
    """Holds the jobs it is given and, each time the coordinator waits, answers one of those held,
    picked by a seeded generator: the results come back in another order for each seed."""

    def __init__(self, plan: SweepPlan, seed: int) -> None:
        self.plan = plan
        self.published = 0
        self.held: list[PlannedRun] = []
        self.most_held = 0
        self.answered: list[int] = []  # points, in the order their results were sent
        self._rng = np.random.default_rng(seed)

    async def replay(self) -> list[bytes]:
        return []

    async def submit(self, runs: list[PlannedRun]) -> None:
        self.published += len(runs)
        self.held += runs
        self.most_held = max(self.most_held, len(self.held))

    async def next_batch(self, timeout: float) -> list[bytes]:
        assert self.held, "the coordinator waits for a result no job will bring"
        run = self.held.pop(int(self._rng.integers(len(self.held))))
        self.answered.append(run.index)
        fast, slow = run.params["fast"], run.params["slow"]
        stats: dict[str, Any] = {"sharpe": -((fast - 12) ** 2) - ((slow - 40) / 5) ** 2}
        report = RunCompleted(self.plan.sweep_id, run.index, run.run_id, "d", stats)
        return [encode(report)]

    def check(self) -> None:
        return None


class Recorded:
    """The search, with every ask and tell logged in the order the coordinator makes them."""

    def __init__(self, search: OptunaSearch) -> None:
        self.search = search
        self.events: list[Event] = []
        self._told = 0

    @property
    def window(self) -> int:
        return self.search.window

    def proposals(self) -> Iterator[PlannedRun]:
        for run in self.search.proposals():
            self.events.append(("ask", run.index, self._told))
            yield run

    def tell(self, run: PlannedRun, report: RunReport) -> None:
        self.events.append(("tell", run.index, self._told))
        self._told += 1
        self.search.tell(run, report)

    def finished(self, reports: dict[int, RunReport]) -> bool:
        return self.search.finished(reports)

    def persist(self) -> None:
        self.search.persist()

    def close(self) -> None:
        self.search.close()


def study(data: Path, out: Path, order: int) -> tuple[SweepPlan, list[Event], ShuffledRunner]:
    plan = plan_for(data, out, batch=BATCH)
    search = Recorded(OptunaSearch(plan, plan.output_dir))
    runner = ShuffledRunner(plan, order)
    collector = Collector(plan)
    journal = Journal(plan.output_dir / JOURNAL)
    progress = Progress(20, stat="sharpe", maximize=True, stream=io.StringIO(), bar=False)
    try:
        asyncio.run(_drive(search, runner, _Session(plan, collector, journal, progress)))
    finally:
        search.close()
        journal.close()
    return plan, search.events, runner


def schedule(trials: int, batch: int) -> list[Event]:
    """The sliding window's asks and tells: the first window asked, then each tell followed by
    the one ask it allows."""
    events: list[Event] = [("ask", n, 0) for n in range(min(batch, trials))]
    for told in range(trials):
        events.append(("tell", told, told))
        if told + batch < trials:
            events.append(("ask", told + batch, told + 1))
    return events


def test_the_asks_and_tells_follow_the_window_whatever_order_the_results_come_in(
    data: Path, tmp_path: Path
) -> None:
    found = [study(data, tmp_path / f"order-{order}", order) for order in range(3)]
    (plan, events, runner), *others = found
    # The window: point n is asked once points 0..n-batch are told, right after that tell, with
    # the batch - 1 points before it still in flight (a batch schedule would have waited for
    # them all); never more than `batch` points asked and not told.
    assert events == schedule(20, BATCH)
    assert all(told == n - BATCH + 1 for kind, n, told in events if kind == "ask" and n >= BATCH)
    distinct = len({run.run_id for run in plan.runs[:BATCH]})
    assert runner.most_held >= distinct == BATCH  # the first window's jobs out at once
    # Each order of results saw the same asks and tells, so the same trials.
    points = [[(r.params, r.run_id) for r in p.runs] for p, _, _ in found]
    assert all(other_events == events for _, other_events, _ in others)
    assert points[0] == points[1] == points[2]
    answered = [tuple(runner.answered) for _, _, runner in found]
    assert len(set(answered)) == 3 and tuple(sorted(answered[0])) != answered[0]
