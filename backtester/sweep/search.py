"""Where a sweep's points come from: the `proposals` that may be in flight now, run as each comes,
and each point's result told back in point order (`tell`), which may allow further proposals.

A grid or random sweep proposes every point at once; a `[search]` asks an optimizer
(`sweep/study.py`, loaded only then: optuna takes a while to import), at most `window` points
ahead of the last one told.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from backtester.sweep.plan import PlannedRun, SweepPlan
from backtester.sweep.spec import RunReport


class Search(Protocol):
    @property
    def window(self) -> int:
        """The most points proposed and not told at once."""
        ...

    def proposals(self) -> Iterator[PlannedRun]:
        """The points not proposed before that may be in flight now, in point order, a point at a
        time as each is asked (after a resume: first those in flight when it stopped); nothing
        when no more may be asked until the next tell, or ever."""
        ...

    def tell(self, run: PlannedRun, report: RunReport) -> None:
        """The result of the earliest proposed point not told yet."""
        ...

    def finished(self, reports: dict[int, RunReport]) -> bool:
        """Nothing left to ask, run or tell."""
        ...

    def persist(self) -> None:
        """Make what was asked and told so far durable (an fsync; writes are made as they come).
        May run on another thread while proposals and tells go on."""
        ...

    def close(self) -> None: ...


class FixedPoints:
    """Every planned point proposed at once."""

    def __init__(self, plan: SweepPlan) -> None:
        self._runs = list(plan.runs)
        self._asked = False

    @property
    def window(self) -> int:
        return max(len(self._runs), 1)

    def proposals(self) -> Iterator[PlannedRun]:
        if not self._asked:
            self._asked = True
            yield from self._runs

    def tell(self, run: PlannedRun, report: RunReport) -> None:
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
