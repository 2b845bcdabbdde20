"""`python -m backtester run` as a user runs it: subprocesses from the repository root."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import msgspec
import polars as pl
import pytest

from backtester.config_file import load_config
from backtester.manifest import read_manifest, runtime_dependencies
from tests.cli_support import REPO, run_cli, run_dir_of

MANIFEST_KEYS = {
    "run_id",
    "config_id",
    "seed",
    "git_sha",
    "git_dirty",
    "package_version",
    "python",
    "platform",
    "dependencies",
    "data",
    "started_at",
    "finished_at",
    "digest",
    "outputs",
}
Runs = list[tuple[subprocess.CompletedProcess[str], Path]]
RUN_FILES = {
    "manifest.json",
    "stats.json",
    "trades.parquet",
    "fills.parquet",
    "orders.parquet",
    "equity.parquet",
    "config.toml",
}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """The shipped config run twice, in processes with different hash seeds and output dirs."""
    runs = []
    for hash_seed in ("1", "4242"):
        out = tmp_path_factory.mktemp(f"runs-{hash_seed}")
        done = run_cli("run", "configs/sma_cross.toml", "--out", str(out), hash_seed=hash_seed)
        assert done.returncode == 0, done.stderr
        runs.append((done, run_dir_of(done.stdout)))
    return runs


def test_run_writes_every_file_and_prints_stats(two_runs: Runs) -> None:
    done, run_dir = two_runs[0]
    assert {p.name for p in run_dir.iterdir()} == RUN_FILES
    stats = json.loads((run_dir / "stats.json").read_text())
    assert "bars                      30900" in done.stdout
    assert f"trades                    {stats['trades']}" in done.stdout
    assert stats["trades"] > 0
    assert "Traceback" not in done.stderr


def test_manifest_has_every_key_and_describes_the_run(two_runs: Runs) -> None:
    _, run_dir = two_runs[0]
    document = json.loads((run_dir / "manifest.json").read_text())
    assert set(document) >= MANIFEST_KEYS
    manifest = read_manifest(run_dir / "manifest.json")
    assert manifest.run_id == run_dir.name
    assert manifest.seed == 0
    assert set(manifest.dependencies) == set(runtime_dependencies())
    [data] = manifest.data
    assert (data.path, data.rows) == ("golden/data/binance_BTC-USDT_1m.parquet", 30900)
    assert (data.first_ts, data.last_ts) == ("2024-03-01T00:00:00Z", "2024-03-22T10:59:00Z")
    assert set(manifest.outputs) == RUN_FILES - {"manifest.json"}
    stats = json.loads((run_dir / "stats.json").read_text())
    assert (stats["bars"], stats["initial_equity"]) == (30900, 100_000.0)
    assert manifest.digest in two_runs[0][0].stdout


def test_run_dir_holds_the_config_as_decoded(two_runs: Runs) -> None:
    _, run_dir = two_runs[0]
    stored = load_config(run_dir / "config.toml")
    original = load_config(REPO / "configs/sma_cross.toml")
    assert msgspec.structs.replace(stored, output_dir="runs") == original


def test_trades_frame_round_trips_through_parquet(two_runs: Runs) -> None:
    _, run_dir = two_runs[0]
    trades = pl.read_parquet(run_dir / "trades.parquet")
    stats = json.loads((run_dir / "stats.json").read_text())
    assert trades.height == stats["trades"] + stats["open_trades"]
    assert trades.schema["pnl"] == pl.Float64


def test_same_config_in_other_processes_gives_same_id_digest_and_bytes(two_runs: Runs) -> None:
    (_, first), (_, second) = two_runs
    assert first.name == second.name  # run_id: not from the clock, the output dir or the process
    assert first.parent != second.parent
    one, two = read_manifest(first / "manifest.json"), read_manifest(second / "manifest.json")
    assert one.digest == two.digest
    assert one.config_id == two.config_id
    for name in ("trades.parquet", "fills.parquet", "orders.parquet", "equity.parquet"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "stats.json").read_bytes() == (second / "stats.json").read_bytes()


def test_rerun_into_the_same_directory_keeps_the_existing_run(two_runs: Runs) -> None:
    _, run_dir = two_runs[0]
    before = (run_dir / "manifest.json").read_bytes()
    done = run_cli("run", "configs/sma_cross.toml", "--out", str(run_dir.parent))
    assert done.returncode == 0, done.stderr
    assert "already there with the same digest; kept" in done.stdout
    assert (run_dir / "manifest.json").read_bytes() == before
    assert [p.name for p in run_dir.parent.iterdir()] == [run_dir.name]


def test_seed_and_set_overrides_change_the_run_id(tmp_path: Path, two_runs: Runs) -> None:
    _, base = two_runs[0]
    done = run_cli(
        "--log-json",
        "run",
        "configs/sma_cross.toml",
        "--out",
        str(tmp_path),
        "--seed",
        "3",
        "--set",
        "strategy.params.fast=12",
    )
    assert done.returncode == 0, done.stderr
    run_dir = run_dir_of(done.stdout)
    assert run_dir.name != base.name
    manifest = read_manifest(run_dir / "manifest.json")
    assert manifest.seed == 3
    assert load_config(run_dir / "config.toml").strategy.params == {"fast": 12, "slow": 30}
    events = [json.loads(line) for line in done.stderr.splitlines()]
    assert [e["event"] for e in events][-2:] == ["run.finished", "run.written"]
    assert events[-1]["run_id"] == run_dir.name


@pytest.mark.parametrize("command", [[], ["run"], ["verify"]])
def test_every_command_has_help(command: list[str]) -> None:
    done = run_cli(*command, "--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: python -m backtester")
    if command == ["run"]:
        for option in ("--seed", "--out", "--set", "--log-json"):
            assert option in done.stdout


def test_the_data_log_counts_the_rows_the_run_gets_after_a_repair(tmp_path: Path) -> None:
    done = run_cli(
        "--log-json",
        "run",
        "golden/sma_cross_binance_raw_repaired/config.toml",
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    (loaded,) = [e for e in events if e["event"] == "data.loaded"]
    assert loaded["rows"] == 30_900  # bars after the repair, what the run's stats count
    assert loaded["rows_read"] == 30_954
    assert (loaded["identical_dropped"], loaded["conflicting_resolved"]) == (30, 24)
    assert loaded["unsorted_sorted"] == 0
