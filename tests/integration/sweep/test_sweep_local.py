"""`python -m backtester sweep` with its embedded nats-server and local workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from backtester.cli import main
from backtester.report.sweep_report import write_sweep_report
from backtester.sweep.config import load_sweep_config
from backtester.sweep.execute import execute, read_sources
from backtester.sweep.plan import build_plan
from backtester.sweep.results import MANIFEST, RESULTS, best, read_manifest
from tests.sweep_support import REPO, small_data, subprocess_env, sweep_config


def _sweep(config: Path, out: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "backtester", "sweep", str(config), "--out", str(out)]
    command += ["--cache-dir", str(cache), *extra]
    return subprocess.run(
        command,
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def two_sweeps(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("local")
    data = small_data(tmp / "bars.parquet")
    config = sweep_config(
        tmp / "sweep.toml",
        data,
        strategy="SmaCross",
        grid={"fast": [3, 5, 8, 13], "slow": [10, 20, 40]},
    )
    outs = []
    for workers in (1, 2):
        # The second sweep also writes its best two runs' directories (the first: the default one).
        extra = ["--materialize", "2"] if workers == 2 else []
        done = _sweep(config, tmp / f"w{workers}", tmp / "cache", "--workers", str(workers), *extra)
        assert done.returncode == 0, done.stderr
        assert "best 10 by sharpe" in done.stdout
        outs.append(tmp / f"w{workers}")
    return config, outs[0], outs[1]


def _sweep_dir(out: Path) -> Path:
    (found,) = (out / "sweeps").iterdir()
    return found


def test_one_and_two_workers_give_the_same_table_and_sweep_digest(
    two_sweeps: tuple[Path, Path, Path],
) -> None:
    _, one, two = two_sweeps
    table_one = pl.read_parquet(_sweep_dir(one) / RESULTS)
    table_two = pl.read_parquet(_sweep_dir(two) / RESULTS)
    assert table_one.equals(table_two)
    assert (_sweep_dir(one) / RESULTS).read_bytes() == (_sweep_dir(two) / RESULTS).read_bytes()
    manifest_one = read_manifest(_sweep_dir(one) / MANIFEST)
    manifest_two = read_manifest(_sweep_dir(two) / MANIFEST)
    assert manifest_one.digest == manifest_two.digest
    assert (manifest_one.execution.workers, manifest_two.execution.workers) == (1, 2)
    assert table_one["index"].to_list() == list(range(table_one.height))
    assert table_one.height == 11  # 4 x 3 grid without fast=13, slow=10
    assert set(table_one["status"]) == {"ok"}


def test_every_row_digest_equals_a_single_run_of_that_point(
    two_sweeps: tuple[Path, Path, Path],
) -> None:
    config, one, _ = two_sweeps
    plan = build_plan(load_sweep_config(config))
    table = pl.read_parquet(_sweep_dir(one) / RESULTS)
    data = read_sources(plan.runs[0].spec)
    for run, row in zip(plan.runs, table.iter_rows(named=True), strict=True):
        outcome = execute(run.spec, data)
        assert (row["param.fast"], row["param.slow"]) == (run.params["fast"], run.params["slow"])
        assert (row["run_id"], row["seed"]) == (run.run_id, run.seed)
        assert row["digest"] == outcome.digest
        assert row["sharpe"] == pytest.approx(outcome.stats["sharpe"], nan_ok=True, rel=0, abs=0)


def test_running_a_finished_sweep_again_asks_for_resume(
    two_sweeps: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    config, one, _ = two_sweeps
    done = _sweep(config, one, tmp_path / "cache", "--workers", "1")
    assert done.returncode == 2
    assert "--resume" in done.stderr
    resumed = _sweep(
        config, one, tmp_path / "cache", "--workers", "1", "--resume", _sweep_dir(one).name
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "(0 run now, 11 already done)" in resumed.stdout


def _run_dirs(out: Path) -> set[str]:
    return {p.name for p in out.iterdir() if (p / "manifest.json").is_file()}


def test_the_best_runs_get_run_directories_that_verify_compare_and_are_linked(
    two_sweeps: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, one, two = two_sweeps
    ranked = best(pl.read_parquet(_sweep_dir(two) / RESULTS), "sharpe", "maximize", 3)
    first, second, third = ranked["run_id"].to_list()
    assert _run_dirs(one) == {first}
    assert _run_dirs(two) == {first, second}
    assert main(["verify", str(two / first)]) == 0
    compare = ["compare", str(two / first), str(two / second), "--out", str(tmp_path / "c.html")]
    assert main(compare) == 0
    page = write_sweep_report(_sweep_dir(two), top=3).read_text()
    assert f'/{first}/report.html"><code>{first}</code></a>' in page
    assert f'/{second}/report.html"><code>{second}</code></a>' in page
    assert f"<code>{third}</code> (no run directory)" in page
