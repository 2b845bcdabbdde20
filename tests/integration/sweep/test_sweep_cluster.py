"""Two nats-servers clustered over loopback routes: a worker on each, the coordinator on the first.

Every run waits at a gate file until both workers have started one, so the worker on the first
server cannot run the whole sweep while the other is still starting on a loaded machine."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from backtester.sweep.results import MANIFEST, RESULTS, read_manifest
from tests.sweep_support import (
    Processes,
    execution_counts,
    execution_env,
    executions,
    nats_servers,
    small_data,
    sweep_config,
    wait_until,
)


def test_results_arrive_from_both_servers_and_the_data_reaches_the_remote_worker(
    tmp_path: Path,
) -> None:
    data = small_data(tmp_path / "bars.parquet")
    sha256 = hashlib.sha256(data.read_bytes()).hexdigest()
    gate = tmp_path / "gate"
    config = sweep_config(
        tmp_path / "sweep.toml",
        data,
        params={"gate": str(gate)},
        grid={"fast": [3, 5, 8, 13], "slow": [20, 40]},
    )
    log = tmp_path / "executions.txt"
    env = execution_env(log)
    out = tmp_path / "out"
    with nats_servers(2) as (first, second), Processes(tmp_path / "logs") as procs:
        # Separate caches: the remote worker stands for another machine.
        procs.worker("local", first, tmp_path / "cache-local", env)
        procs.worker("remote", second, tmp_path / "cache-remote", env)
        args = ["--log-json", "sweep", str(config), "--out", str(out), "--nats", first]
        coordinator = procs.start("coordinator", args, env)
        # One job at a time per worker: with the first one's run held, the next goes to the other.
        both = {"local", "remote"}
        wait_until(lambda: {w for _, w in executions(log)} == both, 90, "a run on each worker")
        gate.touch()
        assert coordinator.wait(90) == 0, procs.log("coordinator")
        remote_log = procs.log("remote")
    (directory,) = (out / "sweeps").iterdir()
    table = pl.read_parquet(directory / RESULTS)
    assert table.height == 8
    assert set(table["status"]) == {"ok"}
    assert set(execution_counts(log).values()) == {1}
    cached = tmp_path / "cache-remote" / "data" / f"{sha256}.parquet"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == sha256
    assert '"cache.fetched"' in remote_log
    assert [d.sha256 for d in read_manifest(directory / MANIFEST).data] == [sha256]
