"""A `[search]` sweep: optuna proposes the points, at most `batch` in flight (the only optuna import).

The trial sequence depends on the sweep seed and the batch size q only, never on the workers:
- a sliding window: point n is asked once points 0..n-q are told, and results are told back in
  point order, each tell followed by the ask it allows before the next tell. So the study holds
  the same told and pending trials at every ask whatever order the results arrive in, while the
  workers always have q - 1 points to run during an ask (no barrier where they wait for a batch);
- before each ask the sampler is made anew with a seed derived from (sweep seed, trial number), so
  a trial's proposal is a function of the study's stored trials and that seed, not of how many
  proposals one sampler object happened to make (which a resumed process would not repeat);
- the study lives in the sweep directory (optuna's journal file), so a resumed sweep reloads the
  very trials asked before, the points in flight among them, and goes on as if never stopped. A
  study asked by the fixed batches of earlier versions is marked by the absence of the schedule
  attribute; it is read back once finished, and refused if it is not (`adr/0015`).

A proposal that fails the constraints is told as failed and asked again; it is not a point. Two
trials may propose the same values: they are the same run (same seed, same run id), run once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Generator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler, CmaEsSampler, NSGAIISampler, TPESampler
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.storages.journal._file import BaseJournalFileLock
from optuna.trial import TrialState

from backtester.sweep.config import Distribution, SweepConfigError
from backtester.sweep.plan import MAX_DRAWS_PER_POINT, PlannedRun, SweepPlan
from backtester.sweep.spec import RunCompleted, RunReport

STUDY_JOURNAL = "study.journal"
# A study attribute naming the schedule its trials were asked on; absent from the journals of the
# earlier fixed-batch schedule, whose unfinished studies cannot be continued trial for trial.
SCHEDULE_ATTR = "backtester.schedule"
SCHEDULE = "sliding window"

optuna.logging.set_verbosity(optuna.logging.WARNING)


class _SingleWriter(BaseJournalFileLock):
    """No lock file: one coordinator owns a sweep directory at a time, and a lock file left by a
    coordinator killed mid-write would stall the resume for optuna's grace period."""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        return None


class _JournalFile(JournalFileBackend):
    """optuna's journal file, written a whole proposal or a tell at a time (`commit`) instead of
    one write per operation (a dozen per trial), and synced when the coordinator asks (`sync`).

    A proposal is several operations (create the trial, sampler attributes, each parameter); a
    process killed between two of them would leave a trial without all its parameters, which a
    resumed study cannot take back, so it would ask the next proposal under another trial number
    (another seed) than an uninterrupted study. Written in one go, a proposal is in the file whole
    or not at all; one that is not is asked again alike. With one writer, the file holds what was
    read when it was opened plus what was committed since, so optuna's reads (one per storage
    operation, each an open, a stat and a parse) are served from memory, as the same records."""

    def __init__(self, path: Path) -> None:
        _drop_torn_tail(path)
        super().__init__(str(path), lock_obj=_SingleWriter())
        self._logs = list(super().read_logs(0))
        self._handle = path.open("ab", buffering=0)
        self._pending: list[bytes] = []

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        yield from self._logs[log_number_from:]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        lines = [json.dumps(log, separators=(",", ":")) for log in logs]
        self._pending += [line.encode("utf-8") + b"\n" for line in lines]
        self._logs += [json.loads(line) for line in lines]

    def commit(self) -> None:
        """Write what was appended since the last commit, in one write."""
        data = memoryview(b"".join(self._pending))
        self._pending.clear()
        while data:
            data = data[self._handle.write(data) :]

    def sync(self) -> None:
        """Make what was committed durable. Only an fsync, so it may run on another thread
        while this one commits more (the file is appended to, never rewritten)."""
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self.commit()
        self.sync()
        self._handle.close()

    def discard(self) -> None:
        """Close without writing what was appended since the last commit."""
        self._pending.clear()
        self._handle.close()


def _drop_torn_tail(path: Path) -> None:
    """A process killed mid-write leaves a partial last line, which optuna would refuse to read
    past once anything follows it: cut it off (its operation is redone identically)."""
    if not path.is_file():
        return
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end != len(data):
        with path.open("r+b") as handle:
            handle.truncate(end)


def distribution(spec: Distribution) -> BaseDistribution:
    if spec.uniform is not None:
        return FloatDistribution(*spec.uniform, step=spec.step)
    if spec.loguniform is not None:
        return FloatDistribution(*spec.loguniform, log=True)
    if spec.randint is not None:
        return IntDistribution(*spec.randint, step=int(spec.step or 1))
    assert spec.choice is not None  # Distribution requires exactly one
    return CategoricalDistribution(spec.choice)


def trial_seed(sweep_seed: int, number: int) -> int:
    text = f"{sweep_seed}:{number}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "little")


class OptunaSearch:
    def __init__(self, plan: SweepPlan, directory: Path) -> None:
        search = plan.config.search
        assert search is not None  # only [search] plans come here
        goals = plan.config.goals()
        if search.method == "cmaes" and len(goals) > 1:
            raise SweepConfigError("cmaes optimizes one objective; use nsga2 or tpe for several")
        self.plan = plan
        self.search = search
        self._specs = search.params
        self._distributions = {name: distribution(d) for name, d in search.params.items()}
        self._goals = goals
        self._journal = _JournalFile(directory / STUDY_JOURNAL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study = optuna.create_study(
                study_name=plan.sweep_id,
                storage=JournalStorage(self._journal),
                directions=[goal.direction for goal in goals],
                load_if_exists=True,
            )
        self._kept: BaseSampler | None = None
        self._trial_of: list[int] = []  # point index -> trial number
        self._told = 0  # points told, always a prefix in point order
        self._handed = 0  # points handed out by `proposals`, a prefix in point order
        self._trials = 0
        self._restore()
        self._check_schedule(directory)

    @property
    def window(self) -> int:
        return self.search.batch

    def _restore(self) -> None:
        """Points from the trials a previous session asked, in trial order."""
        for trial in self.study.get_trials(deepcopy=False):
            self._trials = trial.number + 1
            params = self._values(trial.params)
            if not self.plan.feasible(params):
                if trial.state == TrialState.RUNNING:  # stopped before telling it so
                    self.study.tell(trial.number, state=TrialState.FAIL)
                continue
            run = self.plan.add(params)
            self._trial_of.append(trial.number)
            if trial.state != TrialState.RUNNING:
                self._told = run.index + 1
        self._handed = self._told  # the points in flight are handed out again

    def _check_schedule(self, directory: Path) -> None:
        """Mark a new study with its schedule; refuse an unfinished one asked on another."""
        if self.study.user_attrs.get(SCHEDULE_ATTR) == SCHEDULE:
            return
        if self._trials == 0:
            self.study.set_user_attr(SCHEDULE_ATTR, SCHEDULE)
            self._journal.commit()
            return
        if self._told < self.search.trials:
            self._journal.discard()
            raise SweepConfigError(
                f"{directory / STUDY_JOURNAL} was asked in fixed batches by an earlier version "
                "and cannot be continued trial for trial; remove the sweep directory to run the "
                "search anew"
            )

    def finished(self, reports: dict[int, RunReport]) -> bool:
        return self._told >= self.search.trials

    def proposals(self) -> Iterator[PlannedRun]:
        """The points that may be in flight now, in point order, each as soon as it is asked: the
        points asked but not handed out yet (after a resume, those asked and not told before),
        then new ones while fewer than `batch` points are asked and not told. Asks only what the
        number of points told allows, so each ask sees the same study whenever it is made."""
        while self._handed < len(self.plan.runs):
            self._handed += 1
            yield self.plan.runs[self._handed - 1]
        end = min(self._told + self.search.batch, self.search.trials)
        rejected = 0
        while len(self.plan.runs) < end:
            number = self._trials
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study.sampler = self._seeded(trial_seed(self.plan.config.seed, number))
                trial = self.study.ask(self._distributions)
            self._trials += 1
            params = self._values(trial.params)
            if not self.plan.feasible(params):
                self.study.tell(trial, state=TrialState.FAIL)
                self._journal.commit()
                rejected += 1
                if rejected > MAX_DRAWS_PER_POINT:
                    raise SweepConfigError(
                        f"the optimizer proposed {rejected} points in a row that the constraints "
                        "reject; widen the parameter space or relax the constraints"
                    )
                continue
            # No fsync here: asks lost with the machine are asked again alike (same stored
            # trials, same seeds); `persist` syncs them.
            self._journal.commit()
            rejected = 0
            run = self.plan.add(params)
            self._trial_of.append(trial.number)
            self._handed += 1
            yield run

    def tell(self, run: PlannedRun, report: RunReport) -> None:
        """Tell the outcome of the earliest point not told yet: its objectives, or failed (a run
        that failed, or an objective that is missing or not a finite number)."""
        if run.index != self._told:
            raise ValueError(f"point {run.index} told out of order (next is {self._told})")
        number = self._trial_of[run.index]
        values = self.values(report)
        if values is None:
            self.study.tell(number, state=TrialState.FAIL)
        else:
            self.study.tell(number, values)
        self._told += 1
        self._journal.commit()

    def persist(self) -> None:
        self._journal.sync()

    def values(self, report: RunReport) -> list[float] | None:
        if not isinstance(report, RunCompleted):
            return None
        found = []
        for goal in self._goals:
            value = report.stats.get(goal.stat)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            if not math.isfinite(value):
                return None
            found.append(float(value))
        return found

    def close(self) -> None:
        self._journal.close()

    def _seeded(self, seed: int) -> BaseSampler:
        """The sampler for one proposal, seeded with `seed`. A TPE sampler is kept across
        proposals and reseeded: its random state is all that a seed sets, and the intersection
        search space it caches is a function of the stored trials, which a new sampler would
        compute again from all of them at every proposal (an eighth of the optimizer's time at 200
        trials). The proposals are the same as a new sampler's (a unit test checks it)."""
        kept = self._kept
        if isinstance(kept, TPESampler) and _reseed_tpe(kept, seed):
            return kept
        self._kept = self._sampler(seed)
        return self._kept

    def _sampler(self, seed: int) -> BaseSampler:
        search = self.search
        if search.method == "tpe":
            return TPESampler(
                seed=seed, n_startup_trials=search.startup, multivariate=True, constant_liar=True
            )
        if search.method == "cmaes":
            return CmaEsSampler(
                seed=seed,
                n_startup_trials=search.startup,
                popsize=search.population,
                warn_independent_sampling=False,
            )
        return NSGAIISampler(seed=seed, population_size=search.population or 50)

    def _values(self, raw: dict[str, Any]) -> dict[str, Any]:
        """A trial's values in the config's parameter order, a stepped float on its exact
        decimal (low + k * step), as a grid range would have it."""
        return {name: _on_step(self._specs[name], raw[name]) for name in self._specs}


def _reseed_tpe(sampler: TPESampler, seed: int) -> bool:
    """Give a TPE sampler the random state `TPESampler(seed=seed)` starts with: its own generator
    and its random sampler's (for the startup trials). False if this optuna keeps them elsewhere."""
    own = getattr(sampler, "_rng", None)
    fallback = getattr(getattr(sampler, "_random_sampler", None), "_rng", None)
    if own is None or fallback is None:
        return False
    own.rng.seed(seed)
    fallback.rng.seed(seed)
    return True


def _on_step(spec: Distribution, value: Any) -> Any:
    if spec.uniform is None or spec.step is None:
        return value
    low, step = Decimal(repr(spec.uniform[0])), Decimal(repr(spec.step))
    k = round((Decimal(repr(float(value))) - low) / step)
    return float(low + k * step)
