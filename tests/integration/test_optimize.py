"""`Backtest.optimize` on local processes: the same table and digest as `python -m backtester sweep`
on the same grid, a TPE search identical for one and two workers, and a finished optimization
read back instead of run again."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from backtester import Backtest
from backtester.cli import main
from backtester.execution.fees import FixedRateFee
from backtester.runs.notebook import SaveError
from backtester.strategies import SmaCross
from backtester.sweep.results import MANIFEST, RESULTS, read_manifest
from tests.sweep_support import (
    REPO,
    Processes,
    nats_servers,
    small_data,
    subprocess_env,
    sweep_config,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_data(tmp_path_factory.mktemp("optimize") / "bars.parquet")


def test_optimize_and_the_sweep_command_give_the_same_table_and_digest(
    data: Path, tmp_path: Path
) -> None:
    grid = {"fast": [3, 5, 8, 13], "slow": [10, 20, 40]}
    config = sweep_config(tmp_path / "sweep.toml", data, strategy="SmaCross", grid=grid)
    command = [sys.executable, "-m", "backtester", "sweep", str(config)]
    command += ["--out", str(tmp_path / "cli"), "--workers", "1"]
    done = subprocess.run(
        [*command, "--cache-dir", str(tmp_path / "cache")],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (cli,) = (tmp_path / "cli" / "sweeps").iterdir()

    bt = Backtest(str(data), SmaCross, cash=10_000.0, fee_rate=0.001)
    found = bt.optimize(
        **grid,
        constraint=lambda p: p.fast < p.slow,
        maximize="sharpe",
        workers=2,
        seed=11,
        out=tmp_path / "nb",
    )
    assert found.table.equals(pl.read_parquet(cli / RESULTS))
    assert found.digest == read_manifest(cli / MANIFEST).digest
    assert found.table.height == 11
    ranked = found.table.filter(pl.col("status") == "ok").sort(
        ["sharpe", "index"], descending=[True, False]
    )
    assert found.best == {"fast": ranked["param.fast"][0], "slow": ranked["param.slow"][0]}
    # The best run has its run directory, which replays to its digest.
    assert [p.name for p in found.runs] == [ranked["run_id"][0]]
    assert main(["verify", str(found.runs[0])]) == 0
    assert found.selection.trials == 11
    assert found.selection.verdict
    assert "best by sharpe" in repr(found)


def test_a_tpe_optimization_is_the_same_on_one_and_two_workers_and_is_read_back(
    data: Path, tmp_path: Path
) -> None:
    bt = Backtest(str(data), SmaCross, cash=10_000.0, fee_rate=0.001)
    space = {"fast": range(2, 30), "slow": range(10, 90, 10)}
    runs = []
    for workers in (1, 2):
        runs.append(
            bt.optimize(
                **space,
                method="tpe",
                n_trials=12,
                batch=4,
                startup=4,
                constraint="fast < slow",
                workers=workers,
                seed=3,
                out=tmp_path / f"w{workers}",
            )
        )
    one, two = runs
    assert one.table.equals(two.table)
    assert one.best == two.best
    assert one.table.height == 12
    assert all(s % 10 == 0 for s in one.table["param.slow"])
    # The plot: the objective by trial with the best so far, then the heatmap over both axes.
    history, heatmap, *_ = one.plot().children
    best = history.select_one({"name": "best-so-far"}).data_source.data["best"]
    assert list(best) == one.table["sharpe"].cum_max().to_list()
    cells = heatmap.select_one({"name": "objective-heatmap"}).data_source.data
    assert len(cells["value"]) == one.table.select("param.fast", "param.slow").n_unique()
    assert max(cells["value"]) == one.table["sharpe"].max()
    # Asked again, the finished study is read back from its directory: nothing runs.
    shutil.rmtree(one.directory / "workers", ignore_errors=True)
    again = bt.optimize(
        **space,
        method="tpe",
        n_trials=12,
        batch=4,
        startup=4,
        constraint="fast < slow",
        workers=1,
        seed=3,
        out=tmp_path / "w1",
    )
    assert again.table.equals(one.table)


def test_several_objectives_give_a_pareto_front(data: Path, tmp_path: Path) -> None:
    bt = Backtest(str(data), SmaCross, cash=10_000.0, fee_rate=0.001)
    found = bt.optimize(
        fast=range(2, 30),
        slow=range(10, 90, 10),
        method="nsga2",
        n_trials=8,
        batch=4,
        population=4,
        maximize="sharpe",
        minimize="trades",
        constraint="fast < slow",
        workers=1,
        out=tmp_path,
    )
    assert found.pareto is not None and 1 <= found.pareto.height <= found.table.height
    front = found.pareto.select("sharpe", "trades").rows()
    for sharpe, trades in front:
        assert not any(s >= sharpe and t <= trades and (s, t) != (sharpe, trades) for s, t in front)


def test_the_statistics_convention_of_the_backtest_reaches_its_points(
    data: Path, tmp_path: Path
) -> None:
    bt = Backtest(str(data), SmaCross, cash=10_000.0, fee_rate=0.001, ratio_returns="bar")
    found = bt.optimize(fast=[3, 5], slow=[20], workers=1, out=tmp_path, materialize=0)
    for row in found.table.iter_rows(named=True):
        alone = bt.run(fast=row["param.fast"], slow=row["param.slow"])
        assert row["ratio_returns"] == "bar"
        assert row["sharpe"] == alone.stats["sharpe"]


def test_optimize_with_a_nats_url_runs_on_that_servers_workers(data: Path, tmp_path: Path) -> None:
    bt = Backtest(str(data), SmaCross, cash=10_000.0, fee_rate=0.001)
    grid = {"fast": [3, 5], "slow": [10, 20]}
    local = bt.optimize(**grid, workers=1, out=tmp_path / "local", materialize=0)
    with nats_servers(1) as (url,), Processes(tmp_path / "logs") as procs:
        procs.worker("outside", url, tmp_path / "cache", subprocess_env())
        remote = bt.optimize(**grid, nats=url, workers=0, out=tmp_path / "nats", materialize=0)
        ran = procs.log("outside").count('"run.reported"')
    assert remote.table.equals(local.table)
    assert remote.digest == local.digest
    assert ran == 4  # every point ran on the server's worker, none in this process
    manifest = read_manifest(remote.directory / MANIFEST)
    assert manifest.execution.nats == url and manifest.execution.workers == 0


def test_a_backtest_without_a_run_config_form_is_refused_by_name(
    data: Path, tmp_path: Path
) -> None:
    class CustomFee(FixedRateFee, frozen=True):
        pass

    bt = Backtest(str(data), SmaCross, fees=CustomFee(rate=0.001))
    with pytest.raises(
        SaveError, match=r"^cannot optimize: fees model CustomFee has no run config"
    ):
        bt.optimize(fast=[3, 5], slow=[20], workers=1, out=tmp_path)
    assert not (tmp_path / "sweeps").exists()
