"""Faults with a real nats-server: killed workers, a killed coordinator, failing runs, bad messages.

Executions are counted through the worker's test hook (`BACKTESTER_SWEEP_EXECUTION_LOG`). Where a
fault must strike while runs are unfinished, the runs wait at a gate file (`Sleepy`'s `gate`) that
the test opens after the fault, so a loaded machine cannot finish them first; redelivery is made
fast (`FAST_REDELIVERY`) only where a test waits for one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nats
import polars as pl
import pytest

from backtester.sweep.results import JOURNAL, MANIFEST, RESULTS, read_journal, read_manifest
from tests.sweep_support import (
    REPO,
    Processes,
    alive,
    children_of,
    execution_counts,
    execution_env,
    executions,
    nats_servers,
    small_data,
    sweep_config,
    wait_until,
)

FAST_REDELIVERY = ["--ack-wait", "2", "--max-deliver", "3"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_data(tmp_path_factory.mktemp("data") / "bars.parquet")


@pytest.fixture
def server() -> Iterator[str]:
    with nats_servers(1) as (url,):
        yield url


def _sweep_args(config: Path, out: Path, url: str | None, *extra: str) -> list[str]:
    args = ["--log-json", "sweep", str(config), "--out", str(out), *extra]
    return args + (["--nats", url] if url else [])


def _table(out: Path) -> pl.DataFrame:
    (directory,) = (out / "sweeps").iterdir()
    return pl.read_parquet(directory / RESULTS)


def test_a_worker_killed_mid_job_has_its_job_redelivered_and_every_point_one_result(
    tmp_path: Path, data: Path, server: str
) -> None:
    gate = tmp_path / "gate"
    config = sweep_config(tmp_path / "sweep.toml", data, params={"gate": str(gate)})
    log = tmp_path / "executions.txt"
    env = execution_env(log)
    args = _sweep_args(config, tmp_path / "out", server, *FAST_REDELIVERY)
    with Processes(tmp_path / "logs") as procs:
        victim = procs.worker("victim", server, tmp_path / "cache", env)
        coordinator = procs.start("coordinator", args, env)
        # The victim's first run waits at the gate: it is mid-job, and takes no other, until killed.
        wait_until(lambda: executions(log), 60, "the victim's first run")
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        (in_flight,) = [r for r, _ in executions(log)]
        gate.touch()
        procs.worker("survivor", server, tmp_path / "cache", env)
        assert coordinator.wait(90) == 0, procs.log("coordinator")
    table = _table(tmp_path / "out")
    assert table.height == 6
    assert table["run_id"].n_unique() == 6
    assert set(table["status"]) == {"ok"}
    counts = execution_counts(log)
    # Once by the victim, once more by the survivor after ack_wait.
    assert [w for r, w in executions(log) if r == in_flight] == ["victim", "survivor"]
    assert all(counts[r] == 1 for r in table["run_id"] if r != in_flight)


def test_a_killed_coordinator_resumes_without_running_any_finished_point_again(
    tmp_path: Path, data: Path, server: str
) -> None:
    # The six points with fast 3 or 5 run at once; those with fast 8 or 13 wait at the gate, so
    # the coordinator is killed with points unfinished (two of them held by the workers).
    gate = tmp_path / "gate"
    config = sweep_config(
        tmp_path / "sweep.toml",
        data,
        params={"gate": str(gate), "gate_from_fast": 8},
        grid={"fast": [3, 5, 8, 13], "slow": [20, 40, 60]},
    )
    log = tmp_path / "executions.txt"
    env = execution_env(log)
    out = tmp_path / "out"
    with Processes(tmp_path / "logs") as procs:
        for name in ("w1", "w2"):
            procs.worker(name, server, tmp_path / "cache", env)
        first = procs.start("first", _sweep_args(config, out, server), env)
        journal = wait_until(lambda: next(out.glob(f"sweeps/*/{JOURNAL}"), None), 60, "journal")
        wait_until(lambda: len(read_journal(journal)) >= 3, 60, "three journaled results")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        journaled = {r.run_id for r in read_journal(journal)}
        sweep_id = journal.parent.name
        gate.touch()
        resumed = procs.start(
            "resumed",
            ["--log-json", "sweep", "--resume", sweep_id, "--out", str(out), "--nats", server],
            env,
        )
        assert resumed.wait(60) == 0, procs.log("resumed")
    table = _table(out)
    assert table.height == 12
    assert table["run_id"].n_unique() == 12
    assert set(table["status"]) == {"ok"}
    counts = execution_counts(log)
    assert sorted(counts) == sorted(table["run_id"])
    assert set(counts.values()) == {1}, counts  # no point ran twice, journaled or not
    assert len(journaled) <= 6 and journaled < set(counts)
    assert read_manifest(journal.parent / MANIFEST).points == 12


def test_a_coordinator_killed_with_its_embedded_server_resumes_from_its_journal(
    tmp_path: Path, data: Path
) -> None:
    # The two points with fast 5 run at once; the worker then waits at the gate with the next.
    gate = tmp_path / "gate"
    config = sweep_config(
        tmp_path / "sweep.toml", data, params={"gate": str(gate), "gate_from_fast": 10}
    )
    log = tmp_path / "executions.txt"
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**execution_env(log), "TMPDIR": str(temp)}
    out = tmp_path / "out"
    cache = ["--cache-dir", str(tmp_path / "cache")]
    with Processes(tmp_path / "logs") as procs:
        first = procs.start("first", _sweep_args(config, out, None, "--workers", "1", *cache), env)
        journal = wait_until(lambda: next(out.glob(f"sweeps/*/{JOURNAL}"), None), 60, "journal")
        wait_until(lambda: len(read_journal(journal)) >= 2, 60, "two journaled results")
        wait_until(lambda: len(executions(log)) >= 3, 60, "the worker at the gate")
        helpers = children_of(first.pid)  # the nats-server and the worker
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        journaled = {r.run_id for r in read_journal(journal)}
        try:
            wait_until(lambda: not any(alive(p) for p in helpers), 15, "helpers to exit")
        finally:
            for pid in helpers:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
        assert len(helpers) == 2
        # The killed coordinator's server store (a copy of the input data) is left behind...
        (leaked,) = temp.glob("backtester-nats-*")
        gate.touch()
        args = ["--log-json", "sweep", str(config), "--resume", journal.parent.name]
        resumed = procs.start("resumed", [*args, "--out", str(out), "--workers", "1", *cache], env)
        assert resumed.wait(60) == 0, procs.log("resumed")
    # ... and removed by the next embedded server, which cleans up its own on the way out.
    assert not leaked.exists()
    assert list(temp.glob("backtester-nats-*")) == []
    table = _table(out)
    assert table.height == 6
    assert set(table["status"]) == {"ok"}
    counts = execution_counts(log)
    assert len(journaled) == 2
    assert all(counts[run_id] == 1 for run_id in journaled)
    assert set(counts) == set(table["run_id"])


def test_a_run_that_raises_is_reported_failed_and_bad_messages_are_rejected(
    tmp_path: Path, data: Path, server: str
) -> None:
    # The points that do not fail wait at the gate until the garbage is out: the coordinator is
    # still collecting when the bad result arrives.
    gate = tmp_path / "gate"
    config = sweep_config(
        tmp_path / "sweep.toml", data, params={"fail_on_fast": 10, "gate": str(gate)}
    )
    log = tmp_path / "executions.txt"
    env = execution_env(log)
    out = tmp_path / "out"
    with Processes(tmp_path / "logs") as procs:
        worker = procs.worker("w1", server, tmp_path / "cache", env)
        # A failed run is handed back at once (no ack_wait): the default ack_wait stays.
        args = _sweep_args(config, out, server, "--max-deliver", "3")
        coordinator = procs.start("coordinator", args, env)
        wait_until(lambda: executions(log), 60, "a first execution")
        asyncio.run(_publish_garbage(server, out))
        gate.touch()
        assert coordinator.wait(90) == 0, procs.log("coordinator")
        # The bad job is queued behind the sweep's: the worker may reach it after the sweep ended.
        wait_until(lambda: '"job.rejected"' in procs.log("w1"), 60, "the bad job rejected")
        assert worker.poll() is None
        coordinator_log = procs.log("coordinator")
    table = _table(out)
    failed = table.filter(pl.col("status") == "failed")
    assert failed["param.fast"].to_list() == [10, 10]
    assert set(failed["error"]) == {"RuntimeError: failing on purpose at fast=10"}
    assert failed["digest"].null_count() == 2
    assert set(table.filter(pl.col("status") == "ok")["param.fast"]) == {5, 15}
    counts = execution_counts(log)
    assert [counts[r] for r in failed["run_id"]] == [3, 3]  # --max-deliver 3
    assert '"result.rejected"' in coordinator_log


def test_a_job_that_kills_every_worker_is_reported_failed_after_max_deliver(
    tmp_path: Path, data: Path
) -> None:
    config = sweep_config(
        tmp_path / "sweep.toml",
        data,
        params={"crash_on_fast": 10},
        grid={"fast": [5, 10, 15], "slow": [20]},
    )
    log = tmp_path / "executions.txt"
    out = tmp_path / "out"
    args = ["--workers", "1", "--max-deliver", "2", "--ack-wait", "1"]
    args += ["--cache-dir", str(tmp_path / "cache")]
    with Processes(tmp_path / "logs") as procs:
        coordinator = procs.start(
            "coordinator", _sweep_args(config, out, None, *args), execution_env(log)
        )
        assert coordinator.wait(90) == 0, procs.log("coordinator")
        coordinator_log = procs.log("coordinator")
    table = _table(out)
    assert table["status"].to_list() == ["ok", "failed", "ok"]
    (error,) = table.filter(pl.col("status") == "failed")["error"]
    assert error.startswith("no result after 2 deliveries")
    crashed = table["run_id"][1]
    assert execution_counts(log)[crashed] == 2
    assert '"worker.restarted"' in coordinator_log


async def _publish_garbage(url: str, out: Path) -> None:
    sweep_id = next(out.glob("sweeps/*")).name
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.publish(f"backtester.jobs.{sweep_id}", b"\x93not a job")
        await js.publish(f"backtester.results.{sweep_id}", b"{}")
    finally:
        await nc.close()


def test_the_worker_refuses_to_start_without_a_server(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "backtester", "worker", "--nats", "nats://127.0.0.1:9"),
            *("--cache-dir", str(tmp_path)),
        ],
        env=execution_env(tmp_path / "x"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "cannot connect to NATS at nats://127.0.0.1:9" in done.stderr
