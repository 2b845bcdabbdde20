"""The notebook side: `result.plot()` builds the report's charts, `result.to_pandas()` hands pandas
tools returns, trades and equity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bokeh.models import Plot

from backtester import RunResult
from backtester.report.notebook import in_notebook


def test_plot_lays_out_every_chart_of_the_report_and_writes_the_page_on_request(
    tmp_path: Path, small_run: RunResult
) -> None:
    layout = small_run.plot(filename=tmp_path / "plot.html", show=False)
    names = {r.name for fig in layout.select({"type": Plot}) for r in fig.renderers}
    assert {"candles-up", "fills-entry", "fills-exit", "equity", "drawdown", "exposure"} <= names
    assert {"monthly-returns", "pnl-histogram", "trade-durations"} <= names
    page = (tmp_path / "plot.html").read_text(encoding="utf-8")
    assert page.count('data-chart="') == 7
    assert small_run.digest in page


def test_plot_without_bars_leaves_out_only_the_price_chart(small_run: RunResult) -> None:
    layout = small_run.plot(bars={}, show=False)
    names = {r.name for fig in layout.select({"type": Plot}) for r in fig.renderers}
    assert "candles-up" not in names and "equity" in names


def test_plot_is_not_shown_outside_a_notebook() -> None:
    assert not in_notebook()


def test_to_pandas_returns_bar_returns_that_compound_to_the_final_equity(
    small_run: RunResult,
) -> None:
    frames = small_run.to_pandas()
    assert isinstance(frames.returns.index, pd.DatetimeIndex)
    assert str(frames.returns.index.tz) == "UTC"
    assert len(frames.returns) == small_run.equity.height
    growth = float(np.prod(1.0 + frames.returns.to_numpy()))
    first = small_run.equity["equity"][0]
    assert first * growth == pytest.approx(small_run.stats["final_equity"], rel=1e-9)
    assert frames.equity["equity"].iloc[-1] == small_run.stats["final_equity"]
    assert len(frames.trades) == small_run.trades.height
    assert list(frames.trades.columns) == small_run.trades.columns
