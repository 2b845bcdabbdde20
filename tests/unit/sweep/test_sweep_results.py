"""Accounting and outputs: one result per point, the journal, the results table and digest."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from backtester.sweep.config import decode_sweep_config
from backtester.sweep.coordinator import Collector
from backtester.sweep.plan import SweepPlan, build_plan
from backtester.sweep.results import (
    Journal,
    SweepExistsError,
    best,
    prepare_directory,
    read_journal,
    results_table,
    sweep_digest,
)
from backtester.sweep.spec import RunCompleted, RunFailed, RunReport
from tests.sweep_support import GOLDEN


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> SweepPlan:
    raw = {
        "base": {
            "data": [{"kind": "file", "path": str(GOLDEN), "symbol": "BTC/USDT"}],
            "strategy": {"name": "SmaCross"},
        },
        "grid": {"fast": [5, 10], "slow": [30, 60]},
        "output_dir": str(tmp_path_factory.mktemp("out")),
    }
    return build_plan(decode_sweep_config(raw, "test"))


def completed(plan: SweepPlan, index: int, sharpe: float, **kw: Any) -> RunCompleted:
    run = plan.runs[index]
    stats = {"sharpe": sharpe, "trades": 10 + index, "start": "2024-03-01"}
    return RunCompleted(plan.sweep_id, index, run.run_id, f"{index:064x}", stats, **kw)


def failed(plan: SweepPlan, index: int) -> RunFailed:
    return RunFailed(plan.sweep_id, index, plan.runs[index].run_id, "ValueError: no")


def all_reports(plan: SweepPlan) -> list[RunReport]:
    return [
        completed(plan, 0, 1.5),
        failed(plan, 1),
        completed(plan, 2, math.nan),
        completed(plan, 3, 2.5),
    ]


def test_the_first_result_of_a_point_wins_and_later_ones_count_as_duplicates(
    plan: SweepPlan,
) -> None:
    collector = Collector(plan)
    assert collector.accept(completed(plan, 0, 1.0, worker="a")) is None
    assert collector.accept(completed(plan, 0, 1.0, worker="b")) == "duplicate"
    assert collector.reports[0].worker == "a"  # type: ignore[union-attr]
    assert collector.duplicates == 1
    assert [run.index for run in plan.runs if run.index not in collector.reports] == [1, 2, 3]


def test_results_of_other_sweeps_points_or_runs_are_rejected(plan: SweepPlan) -> None:
    collector = Collector(plan)
    good = completed(plan, 1, 1.0)
    wrong_sweep = RunCompleted("0" * 16, 1, good.run_id, good.digest, good.stats)
    no_point = RunCompleted(plan.sweep_id, 99, good.run_id, good.digest, good.stats)
    wrong_run = RunCompleted(plan.sweep_id, 1, plan.runs[0].run_id, good.digest, good.stats)
    assert "another sweep" in (collector.accept(wrong_sweep) or "")
    assert "no point 99" in (collector.accept(no_point) or "")
    assert "is not point 1's" in (collector.accept(wrong_run) or "")
    assert collector.rejected == 3
    assert collector.reports == {}


def test_the_table_is_the_same_whatever_order_results_arrive_in(plan: SweepPlan) -> None:
    reports = all_reports(plan)
    forward = results_table(plan, {r.index: r for r in reports})
    backward = results_table(plan, {r.index: r for r in reversed(reports)})
    assert forward.equals(backward)
    assert forward.columns[:8] == [
        "index",
        "param.fast",
        "param.slow",
        "seed",
        "run_id",
        "status",
        "digest",
        "error",
    ]
    assert forward["status"].to_list() == ["ok", "failed", "ok", "ok"]
    assert forward["error"].to_list() == [None, "ValueError: no", None, None]
    assert forward.schema["trades"] == pl.Int64
    assert forward["seed"].to_list() == [run.seed for run in plan.runs]
    assert sweep_digest(plan, {r.index: r for r in reports}) == sweep_digest(
        plan, {r.index: r for r in reversed(reports)}
    )


def test_the_sweep_digest_is_sha256_over_run_digests_in_point_order(plan: SweepPlan) -> None:
    reports = {r.index: r for r in all_reports(plan)}
    lines = [f"{0:064x}", "failed", f"{2:064x}", f"{3:064x}"]
    expected = hashlib.sha256("".join(f"{line}\n" for line in lines).encode()).hexdigest()
    assert sweep_digest(plan, reports) == expected


def test_the_best_points_skip_failures_and_nan(plan: SweepPlan) -> None:
    table = results_table(plan, {r.index: r for r in all_reports(plan)})
    assert best(table, "sharpe", "maximize", 10)["index"].to_list() == [3, 0]
    assert best(table, "sharpe", "minimize", 1)["index"].to_list() == [0]
    assert best(table, "no_such_stat", "maximize", 3).height == 0


def test_the_journal_survives_a_torn_last_record(tmp_path: Path, plan: SweepPlan) -> None:
    path = tmp_path / "journal.bin"
    journal = Journal(path)
    for report in all_reports(plan)[:3]:
        journal.append(report)
    journal.close()
    whole = path.read_bytes()
    path.write_bytes(whole[:-5])  # a coordinator killed while writing the third record
    back = read_journal(path)
    assert [r.index for r in back] == [0, 1]
    assert back == all_reports(plan)[:2]


def test_a_sweep_with_results_is_never_silently_started_over(plan: SweepPlan) -> None:
    directory = prepare_directory(plan, resume=False)
    journal = Journal(directory / "journal.bin")
    journal.append(completed(plan, 0, 1.0))
    journal.close()
    with pytest.raises(SweepExistsError, match=f"--resume {plan.sweep_id}"):
        prepare_directory(plan, resume=False)
    assert prepare_directory(plan, resume=True) == directory
