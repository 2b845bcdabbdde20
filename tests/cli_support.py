"""Run `python -m backtester` in a subprocess, as a user would, from the repository root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str,
    cwd: Path = REPO,
    hash_seed: str = "0",
    extra_path: tuple[Path, ...] = (),
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(p) for p in (REPO, *extra_path)),
        "PYTHONHASHSEED": hash_seed,
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "backtester", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_dir_of(stdout: str) -> Path:
    """The run directory a successful `run` printed on its last line."""
    line = next(li for li in stdout.splitlines() if li.startswith("run directory: "))
    return Path(line.removeprefix("run directory: ").split(" (", 1)[0])
