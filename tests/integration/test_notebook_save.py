"""A notebook run joins the audit trail: `result.save()` / `bt.run(save=...)` write the run directory
the `run` command writes, and `verify`, `report` and `compare` take it."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from backtester import Backtest, FixedRateFee, Instrument
from backtester.runs.notebook import SaveError
from backtester.strategies import SmaCross
from tests.cli_support import REPO, run_cli, run_dir_of

GOLDEN = "golden/data/binance_BTC-USDT_1m.parquet"
GOOG = REPO / "tests" / "data" / "backtesting_py_GOOG.csv"
BTC = Instrument("BTC/USDT", base="BTC", quote="USDT")


def test_a_saved_notebook_run_verifies_and_is_the_run_the_cli_makes(tmp_path: Path) -> None:
    bt = Backtest(GOLDEN, SmaCross, cash=100_000, fee_rate=0.001, instrument=BTC)
    result = bt.run(fast=10, slow=30, save=tmp_path)
    assert result.run_dir is not None
    assert result.run_dir.parent == tmp_path
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["digest"] == result.digest

    done = run_cli("verify", str(result.run_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED" in done.stdout

    # configs/sma_cross.toml is this backtest: the CLI lands in the very same directory.
    done = run_cli("run", "configs/sma_cross.toml", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert run_dir_of(done.stdout) == result.run_dir
    assert "already there with the same digest" in done.stdout


def test_a_saved_dataframe_run_stores_its_bars_and_verifies(tmp_path: Path) -> None:
    frame = pd.read_csv(GOOG, index_col=0, parse_dates=True)
    bt = Backtest(frame, SmaCross, cash=10_000, fee_rate=0.002, symbol="GOOG/USD")
    first = bt.run(fast=10, slow=20)
    second = bt.run(fast=5, slow=40)
    run_a, run_b = first.save(tmp_path / "runs"), second.save(tmp_path / "runs")
    (stored,) = (tmp_path / "runs" / "data").glob("*.parquet")  # the same bars are stored once
    config = (run_a / "config.toml").read_text()
    assert f'path = "{stored}"' in config

    for run_dir in (run_a, run_b):
        done = run_cli("verify", str(run_dir))
        assert done.returncode == 0, done.stdout + done.stderr

    done = run_cli("compare", str(run_a), str(run_b), "--out", str(tmp_path / "compare.html"))
    assert done.returncode == 0, done.stderr
    assert "strategy.params.fast" in done.stdout
    done = run_cli("report", str(run_a))
    assert done.returncode == 0, done.stderr
    assert (run_a / "report.html").is_file()


def test_saving_again_keeps_the_directory(tmp_path: Path) -> None:
    result = Backtest(GOLDEN, SmaCross, fee_rate=0.001).run(fast=10, slow=30)
    first = result.save(tmp_path)
    written = (first / "manifest.json").read_bytes()
    assert result.save(tmp_path) == first
    assert (first / "manifest.json").read_bytes() == written


class CustomFee(FixedRateFee, frozen=True):
    """A user's own fee model (here one that happens to charge like the fixed rate)."""


def test_a_model_with_no_config_form_is_refused_by_name(tmp_path: Path) -> None:
    result = Backtest(GOLDEN, SmaCross, fees=FixedRateFee(rate=0.001)).run()
    result.origin = None
    with pytest.raises(ValueError, match=r"only a result of Backtest\.run can be saved"):
        result.save(tmp_path)
    bt = Backtest(GOLDEN, SmaCross, fees=CustomFee(rate=0.001))
    with pytest.raises(SaveError, match="fees model CustomFee has no run config form"):
        bt.run(save=tmp_path)
    assert not tmp_path.joinpath("data").exists()


def test_a_strategy_defined_in_a_notebook_is_saved_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class InACell(SmaCross):
        pass

    InACell.__module__ = "__main__"  # what a class defined in a notebook cell carries
    # A notebook's __main__ has no file (pytest's own has one, a test runner's worker may not).
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    result = Backtest(GOLDEN, InACell, fee_rate=0.001).run()
    with pytest.warns(UserWarning, match="verify can replay it only once the strategy lives in"):
        run_dir = result.save(tmp_path)
    assert "__main__:" in (run_dir / "config.toml").read_text()


def test_plot_without_the_report_extra_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['bokeh'] = None\n"
        "from backtester import Backtest\n"
        "from backtester.strategies import SmaCross\n"
        f"result = Backtest({GOLDEN!r}, SmaCross).run()\n"
        "try:\n"
        "    result.plot()\n"
        "except ValueError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "MissingExtra result.plot() needs the plotting library of the `report` extra: "
        "pip install 'backtester[report]'"
    )
