"""Test support for sweeps: throwaway nats-servers (single or clustered over loopback routes), worker
and coordinator subprocesses that are always cleaned up, small data and sweep configs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from backtester.sweep.server import find_server_binary
from backtester.sweep.worker import EXECUTION_LOG_ENV

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "golden" / "data" / "binance_BTC-USDT_1m.parquet"


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Server:
    def __init__(self, root: Path, name: str, extra: Sequence[str]) -> None:
        self.dir = root / name
        ports = self.dir / "ports"
        ports.mkdir(parents=True)
        command = [find_server_binary(), "-a", "127.0.0.1", "-p", "-1", "-js"]
        command += ["-sd", str(self.dir / "js"), "--ports_file_dir", str(ports)]
        command += ["-l", str(self.dir / "server.log"), "--server_name", name, *extra]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = ""

    def wait(self, timeout: float = 10.0) -> str:
        def read() -> str | None:
            if self.proc.poll() is not None:
                log = (self.dir / "server.log").read_text(errors="replace")
                raise RuntimeError(f"nats-server exited: {log[-2000:]}")
            for found in (self.dir / "ports").glob("*.ports"):
                with contextlib.suppress(ValueError, OSError):
                    return str(json.loads(found.read_text())["nats"][0])
            return None

        self.url = wait_until(read, timeout, "the nats-server ports file")
        return self.url

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def nats_servers(count: int = 1, extra: Sequence[str] = ()) -> Iterator[list[str]]:
    """`count` JetStream servers; with more than one, clustered over loopback routes. `extra`
    arguments go to every server (authentication, TLS)."""
    root = Path(tempfile.mkdtemp(prefix="sweep-nats-"))
    servers: list[_Server] = []
    try:
        routes = [_free_port() for _ in range(count)] if count > 1 else []
        for i in range(count):
            args = list(extra)
            if routes:
                args += ["--cluster_name", "bt-test", "--cluster", f"nats://127.0.0.1:{routes[i]}"]
                others = [p for j, p in enumerate(routes) if j != i]
                args += ["--routes", ",".join(f"nats://127.0.0.1:{p}" for p in others)]
            servers.append(_Server(root, f"n{i + 1}", args))
        yield [server.wait() for server in servers]
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


class Processes:
    """Subprocesses started by a test; all stopped on exit (SIGTERM, then SIGKILL), pass or fail."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.logs.mkdir(parents=True, exist_ok=True)
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def start(self, name: str, args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "backtester", *args],
                env=env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._procs.append(proc)
        return proc

    def worker(
        self,
        name: str,
        url: str,
        cache: Path,
        env: dict[str, str],
        *,
        allow: Sequence[str] = ("tests.sweep_strategies",),
    ) -> subprocess.Popen[bytes]:
        args = ["--log-json", "worker", "--nats", url, "--name", name, "--cache-dir", str(cache)]
        for prefix in allow:
            args += ["--allow-strategy", prefix]
        return self.start(name, args, env)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")


def small_data(path: Path, rows: int = 2_000) -> Path:
    """The first `rows` bars of the golden month: runs take milliseconds."""
    pl.read_parquet(GOLDEN).head(rows).write_parquet(path)
    return path


def sweep_config(
    path: Path,
    data: Path,
    *,
    strategy: str = "tests.sweep_strategies:Sleepy",
    params: dict[str, Any] | None = None,
    grid: dict[str, list[int]] | None = None,
    constraints: Sequence[str] = ("fast < slow",),
    seed: int = 11,
) -> Path:
    grid = grid or {"fast": [5, 10, 15], "slow": [20, 40]}
    lines = [
        'name = "test"',
        f"seed = {seed}",
        f"constraints = {json.dumps(list(constraints))}",
        "[grid]",
        *(f"{k} = {json.dumps(v)}" for k, v in grid.items()),
        "[base]",
        "cash = 10000.0",
        "[[base.data]]",
        'kind = "file"',
        f"path = {json.dumps(str(data))}",
        'symbol = "BTC/USDT"',
        "[base.strategy]",
        f"name = {json.dumps(strategy)}",
        "[base.strategy.params]",
        *(f"{k} = {json.dumps(v)}" for k, v in (params or {}).items()),
        "[base.fees]",
        'kind = "fixed"',
        "rate = 0.001",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def execution_env(log: Path) -> dict[str, str]:
    return subprocess_env(**{EXECUTION_LOG_ENV: str(log)})


def executions(log: Path) -> list[tuple[str, str]]:
    """(run_id, worker) per execution, in order, from the worker test hook's file."""
    if not log.is_file():
        return []
    return [tuple(line.split()) for line in log.read_text().splitlines() if line]  # type: ignore[misc]


def execution_counts(log: Path) -> Counter[str]:
    return Counter(run_id for run_id, _ in executions(log))


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def cmdline(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    return []


def environ(pid: int) -> dict[str, str]:
    with contextlib.suppress(OSError):
        entries = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
        return dict(e.split("=", 1) for e in entries if "=" in e)
    return {}


def embedded_server(coordinator: int) -> tuple[int, str] | None:
    """(pid, url) of the nats-server a coordinator started, once its ports file is written."""
    for pid in children_of(coordinator):
        args = cmdline(pid)
        if not args or not Path(args[0]).name.startswith("nats-server"):
            continue
        ports = Path(args[args.index("--ports_file_dir") + 1])
        for found in ports.glob("*.ports"):
            with contextlib.suppress(ValueError, OSError):
                return pid, str(json.loads(found.read_text())["nats"][0])
    return None


def local_workers(coordinator: int) -> list[int]:
    return [p for p in children_of(coordinator) if "worker" in cmdline(p)]
