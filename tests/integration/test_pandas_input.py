"""Bars as backtesting.py users hold them: a pandas DataFrame with a DatetimeIndex and capitalized
Open/High/Low/Close/Volume columns, or the CSV such a frame writes (an unnamed first column)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from backtester import Backtest, DataError, load_bars
from backtester.strategies import SmaCross

GOOG = Path(__file__).resolve().parents[1] / "data" / "backtesting_py_GOOG.csv"


def goog_pandas() -> pd.DataFrame:
    # How backtesting.py's own test data is loaded (backtesting.test._read_file).
    return pd.read_csv(GOOG, index_col=0, parse_dates=True)


def test_a_pandas_frame_and_its_csv_give_the_same_run_as_the_polars_frame() -> None:
    frame = goog_pandas()
    same_in_polars = pl.DataFrame(
        {
            "timestamp": pl.Series(frame.index).dt.replace_time_zone("UTC"),
            **{c.lower(): frame[c].to_numpy() for c in frame.columns},
        }
    )
    results = [
        Backtest(source, SmaCross, cash=10_000, fee_rate=0.002, symbol="GOOG/USD").run(
            fast=10, slow=20
        )
        for source in (frame, str(GOOG), same_in_polars)
    ]
    assert results[0].stats["bars"] == 2148
    assert results[0].stats["trades"] > 10
    assert results[0].stats["start"] == "2004-08-19 00:00:00+00:00"
    assert {r.digest for r in results} == {results[0].digest}


def test_a_timezone_aware_index_is_converted_to_utc() -> None:
    frame = goog_pandas().tz_localize("America/New_York")
    bars = load_bars(frame).frame
    assert bars["ts"][0] == (1_092_873_600 + 4 * 3600) * 10**9  # midnight EDT is 04:00 UTC


def test_a_pandas_frame_without_a_time_is_refused_by_name() -> None:
    with pytest.raises(DataError, match="<DataFrame>: no timestamp column"):
        load_bars(goog_pandas().reset_index(drop=True))


def test_something_else_is_refused_by_type() -> None:
    with pytest.raises(DataError, match="not list"):
        Backtest([1, 2, 3], SmaCross)


def test_pandas_stays_out_of_import_backtester() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, backtester; print('pandas' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "False"
