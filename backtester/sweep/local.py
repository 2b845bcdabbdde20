"""Worker subprocesses on the coordinator's machine: started with the sweep, restarted if one dies,
stopped with it (SIGTERM, then SIGKILL), and told to die with the coordinator if it is killed.

Credentials and the server URL (which may hold a password) reach them through the environment, never
the command line, which other users can read. Each is allowed the sweep's own strategy modules.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import structlog

import backtester
from backtester.sweep.nats_adapter import Credentials
from backtester.sweep.server import die_with_parent

log = structlog.get_logger("backtester.sweep.local")

URL_ENV = "BACKTESTER_NATS_URL"
CREDENTIAL_ENV = {
    "user": "BACKTESTER_NATS_USER",
    "password": "BACKTESTER_NATS_PASSWORD",
    "token": "BACKTESTER_NATS_TOKEN",
    "creds_file": "BACKTESTER_NATS_CREDS",
    "tls_ca": "BACKTESTER_NATS_TLS_CA",
    "tls_cert": "BACKTESTER_NATS_TLS_CERT",
    "tls_key": "BACKTESTER_NATS_TLS_KEY",
}
RESTARTS_PER_WORKER = 3


class WorkersLost(RuntimeError):
    pass


def credential_env(credentials: Credentials) -> dict[str, str]:
    """The environment variables that carry `credentials` to a `worker` process."""
    return {
        name: value
        for field, name in CREDENTIAL_ENV.items()
        if (value := getattr(credentials, field)) is not None
    }


class LocalWorkers:
    def __init__(
        self,
        count: int,
        url: str,
        credentials: Credentials,
        *,
        cache_dir: Path,
        log_dir: Path,
        allow_strategies: Sequence[str] = (),
    ) -> None:
        self.count = count
        self._allow = list(allow_strategies)
        self._url = url
        self._credentials = credentials
        self._cache_dir = cache_dir
        self._log_dir = log_dir
        self._procs: list[subprocess.Popen[bytes]] = []
        self._restarts = [0] * count

    def __enter__(self) -> LocalWorkers:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._procs = [self._spawn(i) for i in range(self.count)]
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, slot: int) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        package_root = str(Path(backtester.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        # Only this sweep's credentials: a stale variable in our own environment must not mix in.
        for name in CREDENTIAL_ENV.values():
            env.pop(name, None)
        env.update(credential_env(self._credentials))
        env[URL_ENV] = self._url
        command = [sys.executable, "-m", "backtester", "--log-json", "worker"]
        command += ["--cache-dir", str(self._cache_dir)]
        command += ["--name", f"local-{slot}", "--parent-pid", str(os.getpid())]
        for prefix in self._allow:
            command += ["--allow-strategy", prefix]
        with (self._log_dir / f"worker-{slot}.log").open("ab") as log_file:
            return subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                preexec_fn=die_with_parent(),  # noqa: PLW1509  (spawned from the main thread)
            )

    def check(self) -> None:
        """Restart a worker that died; give up when one keeps dying."""
        for slot, proc in enumerate(self._procs):
            code = proc.poll()
            if code is None:
                continue
            if self._restarts[slot] >= RESTARTS_PER_WORKER:
                raise WorkersLost(
                    f"local worker {slot} died {self._restarts[slot] + 1} times (last exit code "
                    f"{code}); see {self._log_dir / f'worker-{slot}.log'}"
                )
            self._restarts[slot] += 1
            log.warning("worker.restarted", slot=slot, exit_code=code)
            self._procs[slot] = self._spawn(slot)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def stop(self, timeout: float = 2.5) -> None:
        """SIGTERM every worker, SIGKILL what is left after `timeout` seconds in all."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self._procs:
            try:
                proc.wait(max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
