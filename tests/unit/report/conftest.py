from __future__ import annotations

from typing import Any

import pytest

from backtester import RunResult
from backtester.report.data import RunData
from backtester.report.notebook import result_data
from backtester.report.run_page import run_charts
from tests.report_support import golden_run


@pytest.fixture(scope="session")
def small_run() -> RunResult:
    """Five thousand real bars with stops and take-profits: every chart has something to draw."""
    return golden_run(rows=5_000)


@pytest.fixture(scope="session")
def small_data(small_run: RunResult) -> RunData:
    assert small_run.bars is not None
    return result_data(small_run, small_run.bars)


@pytest.fixture(scope="session")
def charts(small_data: RunData) -> dict[str, Any]:
    """The run's charts by key, built once (building is the slow part)."""
    return {chart.key: chart.model for chart in run_charts(small_data)}
