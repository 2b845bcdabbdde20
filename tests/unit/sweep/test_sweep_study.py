"""The optuna search in-process: a trial sequence that depends on (seed, batch) only, resumed
mid-window or between a tell and its ask identically, constraints and duplicate proposals, every
method, and a study asked on the earlier fixed-batch schedule refused unless finished."""

from __future__ import annotations

import math
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from optuna.samplers import TPESampler

from backtester.cli import main
from backtester.sweep.config import SweepConfigError, decode_sweep_config, load_sweep_config
from backtester.sweep.plan import PlannedRun, SweepPlan, build_plan
from backtester.sweep.spec import RunCompleted, RunReport
from backtester.sweep.study import STUDY_JOURNAL, OptunaSearch
from tests.sweep_support import small_data


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_data(tmp_path_factory.mktemp("study") / "bars.parquet", rows=300)


def plan_for(data: Path, out: Path, **search: Any) -> SweepPlan:
    raw: dict[str, Any] = {
        "seed": 3,
        "constraints": ["fast < slow"],
        "search": {
            "trials": 20,
            "batch": 6,
            "startup": 4,
            "params": {"fast": {"randint": [2, 30]}, "slow": {"randint": [10, 60], "step": 5}},
            **search,
        },
        "base": {
            "data": [{"kind": "file", "path": str(data), "symbol": "BTC/USDT"}],
            "strategy": {"name": "SmaCross"},
        },
        "output_dir": str(out),
    }
    if search.get("method") == "nsga2":
        raw["objectives"] = [{"stat": "a"}, {"stat": "b", "direction": "minimize"}]
    plan = build_plan(decode_sweep_config(raw, "test"))
    plan.output_dir.mkdir(parents=True, exist_ok=True)
    return plan


def outcome(run: PlannedRun) -> RunReport:
    """A made-up objective with a peak at fast=12, slow=40."""
    fast, slow = run.params["fast"], run.params["slow"]
    stats: dict[str, Any] = {"sharpe": -((fast - 12) ** 2) - ((slow - 40) / 5) ** 2}
    stats |= {"a": math.sin(fast), "b": slow / 10}
    return RunCompleted("s", run.index, run.run_id, "d", stats)  # type: ignore[arg-type]


def drive(
    search: OptunaSearch, tells: int | None = None, in_flight: list[PlannedRun] | None = None
) -> None:
    """Tell each point in point order, taking the proposals each tell allows, as the coordinator
    does (starting from `in_flight`, proposals taken already); with `tells`, stop after that many,
    before the last one's proposals (a kill there)."""
    in_flight = deque(search.proposals() if in_flight is None else in_flight)
    told = 0
    while in_flight:
        run = in_flight.popleft()
        search.tell(run, outcome(run))
        told += 1
        if told == tells:
            return
        in_flight += search.proposals()


def points(plan: SweepPlan) -> list[tuple[int, int, str]]:
    return [(r.params["fast"], r.params["slow"], r.run_id) for r in plan.runs]


def test_a_study_proposes_the_same_points_every_time_and_honours_the_constraints(
    data: Path, tmp_path: Path
) -> None:
    first, second = plan_for(data, tmp_path / "a"), plan_for(data, tmp_path / "b")
    for plan in (first, second):
        search = OptunaSearch(plan, plan.output_dir)
        drive(search)
        search.close()
    assert len(first.runs) == 20
    assert points(first) == points(second)
    assert all(r.params["fast"] < r.params["slow"] for r in first.runs)
    assert all(r.params["slow"] % 5 == 0 for r in first.runs)
    assert [r.index for r in first.runs] == list(range(20))


@pytest.mark.parametrize("asked", [True, False], ids=["after-its-ask", "before-its-ask"])
def test_a_study_stopped_after_a_tell_resumes_to_the_same_points(
    data: Path, tmp_path: Path, asked: bool
) -> None:
    straight = plan_for(data, tmp_path / "straight")
    search = OptunaSearch(straight, straight.output_dir)
    drive(search)
    search.close()

    broken = plan_for(data, tmp_path / "broken")
    search = OptunaSearch(broken, broken.output_dir)
    drive(search, tells=9)  # 9 told, the points up to 9 + 6 - 1 asked but the last
    if asked:
        assert len(list(search.proposals())) == 1
    search.close()
    journal = broken.output_dir / STUDY_JOURNAL
    with journal.open("ab") as handle:
        handle.write(b'{"op_code": 4, "worker_id"')  # a write torn by a kill

    again = plan_for(data, tmp_path / "broken")
    resumed = OptunaSearch(again, again.output_dir)
    assert points(again) == points(broken)  # the asked trials come back as points
    in_flight = list(resumed.proposals())  # the ones in flight, and the ask the kill cut off
    assert in_flight == again.runs[9:15] and len(again.runs) == 15
    drive(resumed, in_flight=in_flight)
    resumed.close()
    assert points(again) == points(straight)


class _Killed(BaseException):
    """Stands for the process dying: nothing after it runs, not even `close`."""


def test_a_study_killed_in_the_middle_of_a_proposal_resumes_to_the_same_points(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight = plan_for(data, tmp_path / "straight")
    search = OptunaSearch(straight, straight.output_dir)
    drive(search)
    search.close()

    # The trial is created in the journal before the sampler proposes its parameters: dying in
    # the sampler leaves a trial without them, unless a proposal is written whole or not at all.
    calls = 0
    propose = TPESampler.sample_relative

    def dies_at_the_ninth(self: TPESampler, *args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 9:
            raise _Killed
        return propose(self, *args)

    broken = plan_for(data, tmp_path / "broken")
    monkeypatch.setattr(TPESampler, "sample_relative", dies_at_the_ninth)
    with pytest.raises(_Killed):
        drive(OptunaSearch(broken, broken.output_dir))
    monkeypatch.undo()

    again = plan_for(data, tmp_path / "broken")
    resumed = OptunaSearch(again, again.output_dir)
    assert 6 <= len(again.runs) < 9  # the proposals before the one that died are kept
    drive(resumed)
    resumed.close()
    assert points(again) == points(straight)


def test_a_point_proposed_twice_is_the_same_run(data: Path, tmp_path: Path) -> None:
    plan = plan_for(
        data, tmp_path, trials=12, params={"fast": {"choice": [3, 4]}, "slow": {"choice": [20]}}
    )
    search = OptunaSearch(plan, plan.output_dir)
    drive(search)
    search.close()
    ids = [r.run_id for r in plan.runs]
    assert len(set(ids)) == 2 < len(ids)


@pytest.mark.parametrize("method", ["cmaes", "nsga2"])
def test_every_method_is_deterministic(data: Path, tmp_path: Path, method: str) -> None:
    found = []
    for name in ("a", "b"):
        plan = plan_for(data, tmp_path / name, method=method, population=4)
        search = OptunaSearch(plan, plan.output_dir)
        drive(search)
        search.close()
        found.append(points(plan))
    assert found[0] == found[1]
    assert len(found[0]) == 20


def test_a_kept_and_reseeded_tpe_sampler_proposes_what_new_samplers_would(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = plan_for(data, tmp_path / "kept", trials=30, batch=4)
    search = OptunaSearch(kept, kept.output_dir)
    drive(search)
    search.close()
    # Without the reseed, every proposal gets a sampler made anew with its seed.
    monkeypatch.setattr("backtester.sweep.study._reseed_tpe", lambda sampler, seed: False)
    fresh = plan_for(data, tmp_path / "fresh", trials=30, batch=4)
    search = OptunaSearch(fresh, fresh.output_dir)
    drive(search)
    search.close()
    assert len(kept.runs) == 30
    assert points(kept) == points(fresh)


def _batch_schedule_journal(plan: SweepPlan, told: int) -> None:
    """A study journal as the earlier fixed-batch schedule left it: the same study, asked and
    told through optuna's own journal storage, without the schedule attribute."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from backtester.sweep.study import distribution

    assert plan.config.search is not None
    space = {name: distribution(d) for name, d in plan.config.search.params.items()}
    storage = JournalStorage(JournalFileBackend(str(plan.output_dir / STUDY_JOURNAL)))
    study = optuna.create_study(study_name=plan.sweep_id, storage=storage, direction="maximize")
    for number in range(6):
        study.enqueue_trial({"fast": 2 + number, "slow": 40})
        trial = study.ask(space)
        if number < told:
            study.tell(trial, -1.0 - number)


SEARCH_TOML = """
seed = 3
constraints = ["fast < slow"]

[search]
trials = 6
params = {{ fast = {{ randint = [2, 30] }}, slow = {{ randint = [10, 60], step = 5 }} }}

[[base.data]]
kind = "file"
path = "{data}"
symbol = "BTC/USDT"

[base.strategy]
name = "SmaCross"
"""


def test_a_study_of_the_fixed_batch_schedule_is_refused_unless_it_is_finished(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unfinished = plan_for(data, tmp_path / "unfinished", trials=6)
    _batch_schedule_journal(unfinished, told=3)
    before = (unfinished.output_dir / STUDY_JOURNAL).read_bytes()
    with pytest.raises(SweepConfigError, match="fixed batches by an earlier version") as caught:
        OptunaSearch(unfinished, unfinished.output_dir)
    assert "\n" not in str(caught.value)
    assert (unfinished.output_dir / STUDY_JOURNAL).read_bytes() == before  # left as it was

    # The command line says so in one line, exit code 2, before any worker starts.
    config = tmp_path / "search.toml"
    config.write_text(SEARCH_TOML.format(data=data))
    out = tmp_path / "cli"
    plan = build_plan(load_sweep_config(config, output_dir=str(out)))
    plan.output_dir.mkdir(parents=True)
    _batch_schedule_journal(plan, told=3)
    assert main(["sweep", str(config), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "fixed batches by an earlier version" in err[-1], err

    finished = plan_for(data, tmp_path / "finished", trials=6)
    _batch_schedule_journal(finished, told=6)
    search = OptunaSearch(finished, finished.output_dir)  # read back: nothing is asked
    assert search.finished({}) and list(search.proposals()) == []
    search.close()
    assert len(finished.runs) == 6
