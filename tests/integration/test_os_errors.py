"""OS errors are the user's to fix, not tracebacks: a directory that cannot be written is named
before the work starts, a file-size limit (as a full disk) hit while writing is one line with exit
code 2, and nothing half-written is left behind."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from backtester.cli import main
from backtester.data.catalog import list_series
from tests.cli_support import REPO

CONFIG = REPO / "configs" / "sma_cross.toml"
CSV = REPO / "tests" / "data" / "binance_BTC-USDT_1m.csv"


def _error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert lines[-1].startswith("error: ")
    return lines[-1]


def test_a_run_directory_that_cannot_be_created_is_named_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "results.txt"
    blocker.write_text("a file where a directory should go\n")
    assert main(["run", str(CONFIG), "--out", str(blocker / "runs")]) == 2
    err = capsys.readouterr().err
    assert _error_line(err) == (
        f"error: cannot write the run directory {blocker / 'runs'}: {blocker} is not a directory"
    )
    assert "run.start" not in err  # refused before the run, not after it


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_run_directory_is_named_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert main(["run", str(CONFIG), "--out", str(locked / "runs")]) == 2
    finally:
        locked.chmod(0o755)
    assert "no write permission at" in _error_line(capsys.readouterr().err)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not Path("/sys").is_dir(), reason="Linux's /sys"
)
def test_a_directory_no_one_may_write_is_named_before_the_run_even_for_root(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # /sys refuses new entries to every user, root included (permission bits bind no one there).
    assert main(["run", str(CONFIG), "--out", "/sys/backtester-runs"]) == 2
    err = capsys.readouterr().err
    line = _error_line(err)
    assert line.startswith("error: cannot write the run directory /sys/backtester-runs: ")
    assert line.endswith(" at /sys")
    assert "run.start" not in err
    assert not Path("/sys/backtester-runs").exists()


def _limited(args: list[str], limit_bytes: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command line under a file-size limit: a write past it fails as on a full disk."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "backtester", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        preexec_fn=limit,
    )


def test_a_write_past_the_file_size_limit_is_one_line_and_leaves_no_run_directory(
    tmp_path: Path,
) -> None:
    out = tmp_path / "runs"
    done = _limited(["run", str(CONFIG), "--out", str(out)], 64 * 1024, REPO)
    assert done.returncode == 2, done.stderr
    line = _error_line(done.stderr)
    assert line.startswith(f"error: {out}/")  # the run directory it was writing
    assert line.endswith("File too large")
    assert list(out.iterdir()) == []  # the staging directory was removed: no half-written run


def test_data_import_into_a_root_that_cannot_be_written_reads_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "catalog"
    blocker.write_text("")
    args = ["data", "import", str(tmp_path / "absent.csv"), "--exchange", "binance"]
    args += ["--symbol", "BTC/USDT", "--timeframe", "1m", "--root", str(blocker / "data")]
    assert main(args) == 2
    # The root is checked before the file is even looked at.
    assert "cannot write the catalog" in _error_line(capsys.readouterr().err)


def test_a_data_import_past_the_file_size_limit_stores_nothing(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    args = ["data", "import", str(CSV), "--exchange", "binance", "--symbol", "BTC/USDT"]
    args += ["--timeframe", "1m", "--root", str(root)]
    done = _limited(args, 32 * 1024, tmp_path)
    assert done.returncode == 2, done.stderr
    line = _error_line(done.stderr)
    assert line.startswith(f"error: {root}/binance/spot/BTC-USDT/1m/")
    assert line.endswith(": File too large")
    assert list_series(root) == []
