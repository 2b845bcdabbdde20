"""A run config that names a catalog series: the data comes from the Parquet catalog (imported from a
real CSV through `data import`), and the run manifest records the hash of every partition read."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RAW = REPO / "tests/data/binance_BTC-USDT_1m.csv"

CONFIG = """
seed = 0
cash = 100_000.0
output_dir = "{out}"

[[data]]
kind = "catalog"
root = "{root}"
exchange = "binance"
symbol = "BTC/USDT"
timeframe = "1m"
start = "2024-03-02"
end = "2024-03-09"

[strategy]
name = "SmaCross"

[strategy.params]
fast = 10
slow = 30

[fees]
kind = "fixed"
rate = 0.001
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "backtester", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def catalog_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("catalog_run")
    root = work / "catalog"
    imported = cli(
        "data", "import", str(RAW), "--exchange", "binance", "--symbol", "BTC/USDT",
        "--timeframe", "1m", "--root", str(root), cwd=work,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    config = work / "catalog.toml"
    config.write_text(CONFIG.format(root=root.as_posix(), out=(work / "runs").as_posix()))
    ran = cli("run", str(config), cwd=work)
    assert ran.returncode == 0, ran.stderr
    [run_dir] = (work / "runs").iterdir()
    return root, run_dir


def test_catalog_run_manifest_lists_the_partitions_read_with_their_hashes(
    catalog_run: tuple[Path, Path],
) -> None:
    root, run_dir = catalog_run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    [entry] = manifest["data"]
    assert entry["source"] == "catalog"
    assert entry["partitions"], "a catalog input names the files it read"
    for part in entry["partitions"]:
        path = root / part["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == part["sha256"]
    # One week of 1-minute bars, end exclusive.
    assert entry["rows"] == 7 * 1440
    assert (entry["first_ts"], entry["last_ts"]) == ("2024-03-02T00:00:00Z", "2024-03-08T23:59:00Z")


def test_catalog_run_verifies_and_names_a_changed_partition(catalog_run: tuple[Path, Path]) -> None:
    root, run_dir = catalog_run
    ok = cli("verify", str(run_dir), cwd=run_dir.parent)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    part = root / manifest["data"][0]["partitions"][0]["path"]
    original = part.read_bytes()
    try:
        part.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
        broken = cli("verify", str(run_dir), cwd=run_dir.parent)
        assert broken.returncode != 0
        assert "BTC/USDT" in broken.stdout + broken.stderr
    finally:
        part.write_bytes(original)
