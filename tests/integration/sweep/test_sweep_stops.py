"""Sweeps that must stop, promptly and saying how to go on: a dead embedded server, SIGTERM, a
certificate that does not verify, a second coordinator of the same sweep, a worker slot that keeps
dying. Every process a sweep started is gone within seconds.

"Within seconds" is `PROMPT_S`: the processes' own bounded waits add up to about five seconds, and
a loaded machine stretches them; what a stop must never do is wait out a reconnect loop (forever),
an ack_wait or a JetStream timeout (30 s). The tests wait on what the processes show (a log line, a
connection arriving), not on sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from backtester.sweep.config import load_sweep_config
from backtester.sweep.nats_adapter import Broker, Credentials
from backtester.sweep.plan import build_plan
from backtester.sweep.results import JOURNAL, RESULTS, SweepBusy, read_journal, sweep_lock
from tests.sweep_support import (
    Processes,
    alive,
    children_of,
    embedded_server,
    local_workers,
    nats_servers,
    small_data,
    subprocess_env,
    sweep_config,
    wait_until,
)

PROMPT_S = 15.0


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_data(tmp_path_factory.mktemp("data") / "bars.parquet")


def _embedded_args(config: Path, tmp_path: Path, *extra: str) -> list[str]:
    args = ["--log-json", "sweep", str(config), "--out", str(tmp_path / "out"), "--workers", "1"]
    return [*args, "--cache-dir", str(tmp_path / "cache"), *extra]


def _journal(out: Path) -> Path:
    return wait_until(lambda: next(out.glob(f"sweeps/*/{JOURNAL}"), None), 60, "the journal")


def _resume_command(log: str) -> list[str]:
    """The `--resume` command a stopped sweep printed, as arguments after `python -m backtester`."""
    line = next(line for line in log.splitlines() if "Continue with: python -m backtester" in line)
    return line.split("Continue with: python -m backtester ", 1)[1].split()


def _all_gone(pids: list[int], timeout: float) -> None:
    try:
        wait_until(lambda: not any(alive(p) for p in pids), timeout, "the sweep's processes")
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_killed_embedded_server_stops_the_sweep_with_a_resume_command(
    tmp_path: Path, data: Path
) -> None:
    config = sweep_config(
        tmp_path / "sweep.toml",
        data,
        params={"delay_ms": 300},
        grid={"fast": [5, 10, 15], "slow": [20]},
    )
    out = tmp_path / "out"
    with Processes(tmp_path / "logs") as procs:
        coordinator = procs.start("first", _embedded_args(config, tmp_path), subprocess_env())
        journal = _journal(out)
        wait_until(lambda: read_journal(journal), 60, "a first result")
        server, _ = wait_until(lambda: embedded_server(coordinator.pid), 10, "the server")
        helpers = children_of(coordinator.pid)
        os.kill(server, signal.SIGKILL)
        killed = time.monotonic()
        assert coordinator.wait(PROMPT_S + 15) == 2
        assert time.monotonic() - killed < PROMPT_S  # not after reconnecting forever
        _all_gone(helpers, PROMPT_S)
        log = procs.log("first")
        assert "the embedded nats-server stopped" in log
        assert "Traceback" not in log
        resumed = procs.start("resumed", _resume_command(log), subprocess_env())
        assert resumed.wait(90) == 0, procs.log("resumed")
    (directory,) = (out / "sweeps").iterdir()
    table = pl.read_parquet(directory / RESULTS)
    assert table.height == 3
    assert set(table["status"]) == {"ok"}


def test_sigterm_stops_the_sweep_within_seconds_with_a_resume_command(
    tmp_path: Path, data: Path
) -> None:
    config = sweep_config(tmp_path / "sweep.toml", data, params={"delay_ms": 1_000})
    with Processes(tmp_path / "logs") as procs:
        coordinator = procs.start("sweep", _embedded_args(config, tmp_path), subprocess_env())
        wait_until(lambda: read_journal(_journal(tmp_path / "out")), 60, "a first result")
        helpers = children_of(coordinator.pid)
        assert len(helpers) == 2  # the server and the worker, busy with a run
        coordinator.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        coordinator.wait(PROMPT_S + 15)
        assert time.monotonic() - stopped < PROMPT_S
        _all_gone(helpers, 5)
        log = procs.log("sweep")
    assert "Continue with: python -m backtester sweep --resume" in log
    assert "Traceback" not in log


def test_a_second_coordinator_of_the_same_sweep_is_refused_while_the_first_runs(
    tmp_path: Path, data: Path
) -> None:
    config = sweep_config(tmp_path / "sweep.toml", data, grid={"fast": [5], "slow": [20]})
    plan = build_plan(load_sweep_config(config, output_dir=str(tmp_path / "out")))
    with sweep_lock(plan), Processes(tmp_path / "logs") as procs:  # the first coordinator
        second = procs.start("second", _embedded_args(config, tmp_path), subprocess_env())
        assert second.wait(60) == 2
        refused = procs.log("second")
    assert f"sweep {plan.sweep_id} is already running (process {os.getpid()}" in refused
    assert "Traceback" not in refused
    assert not (plan.output_dir / JOURNAL).exists()  # it ran nothing
    with pytest.raises(SweepBusy), sweep_lock(plan), sweep_lock(plan):
        pass


def test_a_worker_slot_that_keeps_dying_stops_the_sweep_with_a_resume_command(
    tmp_path: Path, data: Path
) -> None:
    config = sweep_config(
        tmp_path / "sweep.toml",
        data,
        params={"crash_on_fast": 5},
        grid={"fast": [5], "slow": [20]},
    )
    args = _embedded_args(config, tmp_path, "--ack-wait", "1", "--max-deliver", "20")
    with Processes(tmp_path / "logs") as procs:
        coordinator = procs.start("sweep", args, subprocess_env())
        assert coordinator.wait(120) == 2
        log = procs.log("sweep")
    assert "local worker 0 died 4 times" in log
    assert "Continue with: python -m backtester sweep --resume" in log
    assert "Traceback" not in log


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_an_untrusted_certificate_fails_fast_naming_the_problem(
    tmp_path: Path, data: Path, self_signed: tuple[Path, Path]
) -> None:
    cert, key = self_signed
    config = sweep_config(tmp_path / "sweep.toml", data, grid={"fast": [5], "slow": [20]})
    tls = ["--tls", "--tlscert", str(cert), "--tlskey", str(key)]
    with nats_servers(1, tls) as (url,), Processes(tmp_path / "logs") as procs:
        started = time.monotonic()
        coordinator = procs.start(
            "sweep",
            ["sweep", str(config), "--out", str(tmp_path / "out"), "--nats", url],
            subprocess_env(),
        )
        worker = procs.start(
            "worker",
            ["worker", "--nats", url, "--cache-dir", str(tmp_path / "cache")],
            subprocess_env(),
        )
        assert coordinator.wait(30) == 2
        assert worker.wait(30) == 2
        assert time.monotonic() - started < 20
        logs = [procs.log("sweep"), procs.log("worker")]
        # Given the CA that signed it, the same server is trusted.
        assert asyncio.run(_connects(url, Credentials(tls_ca=str(cert))))
    for log in logs:
        assert "TLS certificate verification failed: self-signed certificate" in log
        assert "--tls-ca" in log
        assert "Traceback" not in log


async def _connects(url: str, credentials: Credentials) -> bool:
    broker = await Broker.connect(url, credentials)
    await broker.close()
    return True


@contextlib.contextmanager
def _silent_listener() -> Iterator[tuple[socket.socket, str]]:
    """A port that accepts connections and never says anything, like a wrong or stuck service."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock, f"nats://127.0.0.1:{sock.getsockname()[1]}"


def test_a_worker_stuck_connecting_exits_on_sigterm_within_seconds(tmp_path: Path) -> None:
    with _silent_listener() as (sock, url), Processes(tmp_path / "logs") as procs:
        worker = procs.start(
            "worker",
            ["--log-json", "worker", "--nats", url, "--cache-dir", str(tmp_path / "cache")],
            subprocess_env(),
        )
        sock.settimeout(60)
        connection, _ = sock.accept()  # imported and waiting for the server's greeting
        with connection:
            assert worker.poll() is None
            worker.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            worker.wait(PROMPT_S + 15)
            assert time.monotonic() - stopped < PROMPT_S
        assert "Traceback" not in procs.log("worker")


def test_workers_exit_on_sigterm_within_seconds_while_their_server_is_gone(
    tmp_path: Path, data: Path
) -> None:
    config = sweep_config(tmp_path / "sweep.toml", data, params={"delay_ms": 200})
    with Processes(tmp_path / "logs") as procs:
        coordinator = procs.start("sweep", _embedded_args(config, tmp_path), subprocess_env())
        wait_until(lambda: read_journal(_journal(tmp_path / "out")), 60, "a first result")
        server, _ = wait_until(lambda: embedded_server(coordinator.pid), 10, "the server")
        (worker,) = local_workers(coordinator.pid)
        (worker_log,) = (tmp_path / "out" / "sweeps").glob("*/workers/worker-0.log")
        os.kill(coordinator.pid, signal.SIGSTOP)  # the coordinator cannot stop its worker
        try:
            os.kill(server, signal.SIGKILL)
            disconnected = '"nats.disconnected"'
            wait_until(
                lambda: disconnected in worker_log.read_text(), 30, "the worker to reconnect"
            )
            os.kill(worker, signal.SIGTERM)
            stopped = time.monotonic()
            _all_gone([worker], PROMPT_S)
            assert time.monotonic() - stopped < PROMPT_S
        finally:
            os.kill(coordinator.pid, signal.SIGKILL)
            os.kill(coordinator.pid, signal.SIGCONT)
