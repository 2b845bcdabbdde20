"""A run's progress bar: drawn on a terminal (not in CI, not with --log-json), the same result with
and without it, in every mode."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from backtester import Backtest
from backtester.strategies import SmaCross, SmaExtended
from tests.cli_support import REPO

HOURLY = "golden/data/binance_BTC-USDT_1h.csv"


@pytest.mark.parametrize(
    ("strategy", "mode", "params"),
    [
        (SmaExtended, "dense", {"trend_bars": 200, "stop_loss_pct": 4.0}),
        (SmaExtended, "signal", {"trend_bars": 200, "stop_loss_pct": 4.0}),
        (SmaCross, "compiled", {}),
    ],
)
def test_a_bar_over_the_bars_changes_nothing_in_the_result(
    capsys: pytest.CaptureFixture[str], strategy: type, mode: str, params: dict[str, float]
) -> None:
    bt = Backtest(HOURLY, strategy, fee_rate=0.001, repair=True, mode=mode)  # type: ignore[arg-type]
    quiet = bt.run(progress=False, fast=24, slow=72, **params)
    assert capsys.readouterr().err == ""
    shown = bt.run(progress=True, fast=24, slow=72, **params)
    assert shown.digest == quiet.digest
    last = capsys.readouterr().err.split("\r")[-1]
    assert last.startswith(f"{strategy.__name__} ({mode}): 100%")
    assert "7091/7091" in last


def run_on_a_terminal(*args: str, env: dict[str, str]) -> str:
    """`python -m backtester ARGS` with stderr on a pseudo-terminal; what the terminal showed."""
    leader, follower = pty.openpty()
    # A terminal 120 columns wide (a fresh pseudo-terminal reports none).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "backtester", *args],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), **env},
            stdout=subprocess.DEVNULL,
            stderr=follower,
            timeout=300,
            check=False,
        )
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 0, shown.decode(errors="replace")
    return shown.decode(errors="replace")


def test_the_cli_draws_a_bar_on_a_terminal_and_none_in_ci_or_with_json_logs(
    tmp_path: Path,
) -> None:
    command = ("run", "configs/btc_trend_1h.toml", "--out", str(tmp_path))
    no_ci = {"CI": ""}
    assert "SmaExtended (signal): 100%" in run_on_a_terminal(*command, env=no_ci)
    assert "100%" not in run_on_a_terminal("--log-json", *command, env=no_ci)
    assert "100%" not in run_on_a_terminal(*command, env={"CI": "true"})
    assert "100%" not in run_on_a_terminal(*command, "--no-progress", env=no_ci)
