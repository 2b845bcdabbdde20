"""Where a sweep's points come from, batch by batch: the next batch's `proposals`, run as each comes,
`tell` its results.

A grid or random sweep is one batch holding every point; a `[search]` asks an optimizer
(`sweep/study.py`, loaded only then: optuna takes a while to import).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from backtester.sweep.plan import PlannedRun, SweepPlan
from backtester.sweep.spec import RunReport


class Search(Protocol):
    def proposals(self) -> Iterator[PlannedRun]:
        """The next batch, a point at a time as each is asked (after a resume: the batch in
        progress); nothing when the sweep is done."""
        ...

    def tell(self, batch: list[PlannedRun], reports: dict[int, RunReport]) -> None:
        """Every point of `batch` has its report in `reports` (by point index)."""
        ...

    def finished(self, reports: dict[int, RunReport]) -> bool:
        """Nothing left to ask, run or tell."""
        ...

    def persist(self) -> None:
        """Make what was asked and told so far durable (an fsync; writes are flushed as made)."""
        ...

    def close(self) -> None: ...


class FixedPoints:
    """Every planned point in one batch."""

    def __init__(self, plan: SweepPlan) -> None:
        self._runs = list(plan.runs)
        self._asked = False

    def proposals(self) -> Iterator[PlannedRun]:
        if not self._asked:
            self._asked = True
            yield from self._runs

    def tell(self, batch: list[PlannedRun], reports: dict[int, RunReport]) -> None:
        return None

    def finished(self, reports: dict[int, RunReport]) -> bool:
        return all(run.index in reports for run in self._runs)

    def persist(self) -> None:
        return None

    def close(self) -> None:
        return None


def open_search(plan: SweepPlan, directory: Path) -> Search:
    """The plan's search; a `[search]` study is created or reloaded from `directory`."""
    if plan.config.search is None:
        return FixedPoints(plan)
    from backtester.sweep.study import OptunaSearch  # noqa: PLC0415  (optuna only when needed)

    return OptunaSearch(plan, directory)


def total_points(plan: SweepPlan) -> int:
    search = plan.config.search
    return len(plan.runs) if search is None else search.trials
