"""When a progress bar is drawn, and what run, fetch and sweep show through the one library."""

from __future__ import annotations

import io
import json
import os
import pty
from collections.abc import Iterator

import pytest
import structlog

from backtester.logs import configure_logging
from backtester.progress import Progress, bar_wanted
from backtester.sweep.progress import Progress as SweepProgress


@pytest.fixture
def terminal() -> Iterator[io.TextIOWrapper]:
    """A real pseudo-terminal: what a bar is drawn on."""
    leader, follower = pty.openpty()
    stream = os.fdopen(follower, "w", encoding="utf-8")
    try:
        yield stream
    finally:
        stream.close()
        os.close(leader)


@pytest.fixture
def no_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    configure_logging(json=False)


def test_a_bar_is_drawn_on_a_terminal_only(no_ci: None, terminal: io.TextIOWrapper) -> None:
    assert bar_wanted(None, terminal)
    assert not bar_wanted(None, io.StringIO())  # a file or a pipe


def test_ci_and_json_logs_draw_no_bar(
    no_ci: None, terminal: io.TextIOWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    assert not bar_wanted(None, terminal)
    monkeypatch.delenv("CI")
    configure_logging(json=True)
    try:
        assert not bar_wanted(None, terminal)
    finally:
        configure_logging(json=False)
        structlog.reset_defaults()
    assert bar_wanted(None, terminal)


def test_asking_wins_both_ways(no_ci: None, terminal: io.TextIOWrapper) -> None:
    assert bar_wanted(True, io.StringIO())
    assert not bar_wanted(False, terminal)


def test_in_a_notebook_kernel_a_bar_is_drawn_only_when_asked(
    no_ci: None, terminal: io.TextIOWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Kernel:
        def __init__(self) -> None:
            self.config = {"IPKernelApp": {}}  # what IPython's shell carries inside Jupyter

    class IPythonModule:
        @staticmethod
        def get_ipython() -> Kernel:
            return Kernel()

    monkeypatch.setitem(__import__("sys").modules, "IPython", IPythonModule)
    assert not bar_wanted(None, terminal)
    assert bar_wanted(True, terminal)


def test_a_bar_shows_label_count_and_fields() -> None:
    stream = io.StringIO()
    with Progress(
        1_440, label="binance spot BTC/USDT 1m", unit="bar", bar=True, stream=stream
    ) as progress:
        progress.advance(1_000, rows=1_000, to="2024-03-01 16:40")
        progress.advance(440, rows=1_440, to="2024-03-02 00:00")
    last = stream.getvalue().split("\r")[-1]
    assert last.startswith("binance spot BTC/USDT 1m: 100%")
    assert "1440/1440" in last
    assert "rows=1440, to=2024-03-02 00:00" in last


def test_without_a_bar_progress_is_a_log_line_every_few_seconds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(json=True)
    try:
        progress = Progress(
            10, label="s", unit="bar", bar=False, log_event="fetch progress", log_every_s=0.0
        )
        progress.advance(4, rows=4)
        progress.close()
        progress.close()  # once
    finally:
        configure_logging(json=False)
        structlog.reset_defaults()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["fetch progress", "fetch progress finished"]
    assert (lines[-1]["done"], lines[-1]["total"], lines[-1]["percent"]) == (4, 10, 40.0)
    assert lines[-1]["rows"] == 4


def test_iterate_passes_every_item_through_and_counts_them() -> None:
    progress = Progress(2_500, label="run", unit="bar", bar=False)
    assert list(progress.iterate(range(2_500), every=1_024)) == list(range(2_500))
    assert progress.done == 2_500


def test_the_sweep_bar_shows_failures_and_the_best_point() -> None:
    stream = io.StringIO()
    progress = SweepProgress(4, stat="sharpe", maximize=True, stream=stream, bar=True)
    progress.resumed(1, 0)
    progress.add(True, {"sharpe": 0.5}, {"fast": 5})
    progress.add(False, None, {"fast": 8})
    progress.add(True, {"sharpe": 1.25}, {"fast": 12})
    progress.close()
    last = stream.getvalue().split("\r")[-1]
    assert last.startswith("sweep: 100%")
    assert "4/4" in last
    assert "failed=1, best=sharpe 1.25 (fast=12)" in last
