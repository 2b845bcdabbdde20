"""`python -m backtester verify RUN_DIR`: passes on an untouched run, names the cause otherwise."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pytest

from backtester.results import result_digest
from tests.cli_support import REPO, run_cli, run_dir_of

SOURCE_DATA = REPO / "golden/data/binanceus_BTC-USDT_1m_2023-03.csv"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A run over a private copy of a real dataset: (run directory, data file)."""
    root = tmp_path_factory.mktemp("verify")
    data = root / "bars.csv"
    shutil.copyfile(SOURCE_DATA, data)
    done = run_cli(
        "run",
        "configs/sma_cross.toml",
        "--out",
        str(root / "runs"),
        "--set",
        f"data[0].path={data}",
    )
    assert done.returncode == 0, done.stderr
    return run_dir_of(done.stdout), data


@pytest.fixture
def run_copy(recorded: tuple[Path, Path], tmp_path: Path) -> Path:
    """A copy of the run directory that a test may damage."""
    return Path(shutil.copytree(recorded[0], tmp_path / recorded[0].name))


@contextmanager
def edited_row(data: Path, row: int, *, valid: bool = True) -> Iterator[None]:
    """Change the close of one bar (0-based `row`) for the duration of the block."""
    original = data.read_bytes()
    lines = original.decode().splitlines(keepends=True)
    ts, open_, high, low, close, volume = lines[row + 1].strip().split(",")
    # A close above the high fails validation; low (or high) is a valid but different close.
    new_close = (low if close != low else high) if valid else str(float(high) * 2)
    lines[row + 1] = ",".join([ts, open_, high, low, new_close, volume]) + "\n"
    data.write_text("".join(lines))
    try:
        yield
    finally:
        data.write_bytes(original)


def test_untouched_run_verifies(recorded: tuple[Path, Path]) -> None:
    run_dir, _ = recorded
    done = run_cli("verify", str(run_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED: the digest reproduces from the recorded config and data" in done.stdout
    assert re.search(r"^  digest +ok +[0-9a-f]{32}$", done.stdout, re.MULTILINE)
    assert re.search(r"^  data BTC/USDT +ok ", done.stdout, re.MULTILINE)


def test_one_changed_data_row_fails_and_names_the_file(recorded: tuple[Path, Path]) -> None:
    run_dir, data = recorded
    with edited_row(data, 1000):
        done = run_cli("verify", str(run_dir))
    assert done.returncode == 1
    assert f"FAILED: the digest does not reproduce; changed: data BTC/USDT ({data})" in done.stdout
    assert f"{data}: sha256 recorded" in done.stdout
    assert "Traceback" not in done.stderr


def test_data_that_no_longer_validates_fails_with_the_bad_row(recorded: tuple[Path, Path]) -> None:
    run_dir, data = recorded
    with edited_row(data, 17, valid=False):
        done = run_cli("verify", str(run_dir))
    assert done.returncode == 1
    assert (
        f"cannot replay: {data}: row 17 (0-based data row as read): high below max(open, close)"
    ) in done.stdout
    assert f"changed: data BTC/USDT ({data})" in done.stdout


def test_edited_config_fails_and_names_the_config(run_copy: Path) -> None:
    config = run_copy / "config.toml"
    config.write_text(config.read_text().replace("cash = 100000.0", "cash = 50000.0"))
    done = run_cli("verify", str(run_copy))
    assert done.returncode == 1
    assert "config.toml modified" in done.stdout
    assert "config_id recorded" in done.stdout
    assert "FAILED: the digest does not reproduce; changed: outputs, config" in done.stdout


def test_tampered_output_fails_even_though_the_digest_reproduces(run_copy: Path) -> None:
    stats = run_copy / "stats.json"
    document = json.loads(stats.read_text())
    document["trades"] += 1
    stats.write_text(json.dumps(document, indent=2))
    done = run_cli("verify", str(run_copy))
    assert done.returncode == 1
    assert "stats.json modified" in done.stdout
    assert "FAILED: the digest reproduces, but the recorded inputs changed: outputs" in done.stdout


def test_a_run_recorded_with_the_older_digest_still_verifies(run_copy: Path) -> None:
    """A manifest without `digest_algorithm` predates it: its digest is BLAKE2b-256."""
    manifest = run_copy / "manifest.json"
    document = json.loads(manifest.read_text())
    assert document.pop("digest_algorithm") == "xxh3-128"
    fills = pl.read_parquet(run_copy / "fills.parquet")
    equity = pl.read_parquet(run_copy / "equity.parquet")
    assert result_digest(fills, equity) == document["digest"]
    document["digest"] = result_digest(fills, equity, "blake2b-256")
    manifest.write_text(json.dumps(document, indent=2))
    done = run_cli("verify", str(run_copy))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{document['digest']} (blake2b-256, as recorded; new runs record xxh3-128)" in (
        done.stdout
    )


def test_a_digest_algorithm_this_version_does_not_know_is_named(run_copy: Path) -> None:
    manifest = run_copy / "manifest.json"
    document = json.loads(manifest.read_text())
    document["digest_algorithm"] = "sha3-512"
    manifest.write_text(json.dumps(document, indent=2))
    done = run_cli("verify", str(run_copy))
    assert done.returncode == 1
    assert "recorded with digest algorithm 'sha3-512', which this version does not compute" in (
        done.stdout
    )
    assert "Traceback" not in done.stderr


def test_a_directory_without_manifest_is_a_user_error(tmp_path: Path) -> None:
    done = run_cli("verify", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {tmp_path}: not a run directory (no manifest.json)"


USER_STRATEGY = """
from backtester.strategies import SmaCross


class Patient(SmaCross):
    def on_bar(self, bar):
        if bar.index % {every} == 0:
            super().on_bar(bar)
"""


def test_edited_user_strategy_is_named_as_the_code_change(tmp_path: Path) -> None:
    module = tmp_path / "user_strategies.py"
    module.write_text(USER_STRATEGY.format(every=2))
    path = (tmp_path,)
    done = run_cli(
        "run",
        "configs/sma_cross.toml",
        "--out",
        str(tmp_path / "runs"),
        "--set",
        "strategy.name=user_strategies:Patient",
        extra_path=path,
    )
    assert done.returncode == 0, done.stderr
    run_dir = run_dir_of(done.stdout)
    assert run_cli("verify", str(run_dir), extra_path=path).returncode == 0

    module.write_text(USER_STRATEGY.format(every=3))
    done = run_cli("verify", str(run_dir), extra_path=path)
    assert done.returncode == 1
    assert re.search(r"^  code +CHANGED +strategy_sha256 [0-9a-f]{64} -> ", done.stdout, re.M)
    assert "FAILED: the digest does not reproduce; changed: code" in done.stdout


def test_verify_from_another_directory_names_the_strategy_it_cannot_import(
    tmp_path: Path,
) -> None:
    made_in, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    made_in.mkdir()
    elsewhere.mkdir()
    (made_in / "user_strategies.py").write_text(USER_STRATEGY.format(every=2))
    done = run_cli(
        "run",
        str(REPO / "configs/sma_cross.toml"),
        "--out",
        str(tmp_path / "runs"),
        "--set",
        f"data[0].path={SOURCE_DATA}",
        "--set",
        "strategy.name=user_strategies:Patient",
        cwd=made_in,
        extra_path=(made_in,),
    )
    assert done.returncode == 0, done.stderr
    run_dir = run_dir_of(done.stdout)
    assert run_cli("verify", str(run_dir), cwd=made_in, extra_path=(made_in,)).returncode == 0

    done = run_cli("verify", str(run_dir), cwd=elsewhere)
    assert done.returncode == 1
    assert "nondeterminism" not in done.stdout
    assert re.search(
        r"^  strategy +ERROR +user_strategies:Patient cannot be loaded ", done.stdout, re.M
    )
    assert re.search(r"^  digest +- +not replayed$", done.stdout, re.M)
    assert (
        f"FAILED: the run cannot be replayed here: user_strategies:Patient cannot be loaded from "
        f"{elsewhere}: cannot import 'user_strategies'"
    ) in done.stdout
    assert "verify from the directory the run was made in" in done.stdout
    assert "Traceback" not in done.stderr
