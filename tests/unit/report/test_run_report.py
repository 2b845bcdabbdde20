"""A run directory in, one self-contained report.html out; a missing or changed data file costs the
price chart and is said on the page."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest

from backtester import Backtest, RunResult
from backtester.report.notebook import result_data
from backtester.report.run_page import run_page
from backtester.report.run_report import RunDirError, load_run, write_run_report
from backtester.strategies import SmaCross
from tests.report_support import GOLDEN_BARS, write_run_dir


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "data" / GOLDEN_BARS.name
    copy.parent.mkdir()
    shutil.copyfile(GOLDEN_BARS, copy)
    return copy


class _Fetches(HTMLParser):
    """Every URL an element of the page would make the browser fetch."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith("#"):
                self.urls.append(f"{tag} {value}")


def _fetches(page: str) -> list[str]:
    parser = _Fetches()
    parser.feed(page)
    return parser.urls


def test_report_is_one_self_contained_file_with_every_chart(
    tmp_path: Path, small_run: RunResult, data_copy: Path
) -> None:
    run_dir = write_run_dir(small_run, tmp_path / "runs", "run-a", data_copy)
    (run_dir / "report.html").write_text("an earlier report")
    path = write_run_report(run_dir)
    page = path.read_text(encoding="utf-8")
    assert path == run_dir / "report.html"
    assert page.startswith("<!DOCTYPE html>")
    assert _fetches(page) == []
    charts = re.findall(r'data-chart="([^"]+)"', page)
    assert charts == [
        "price-0",
        "equity",
        "drawdown",
        "exposure",
        "monthly-returns",
        "trade-returns",
        "trade-durations",
    ]
    for fact in ("run-a", "0" * 40, small_run.digest, "git SHA", "seed"):
        assert fact in page
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == []


def test_stats_read_back_with_nan_as_floats(
    tmp_path: Path, small_run: RunResult, data_copy: Path
) -> None:
    run_dir = write_run_dir(small_run, tmp_path / "runs", "run-a", data_copy)
    (run_dir / "stats.json").write_text('{"sharpe": "nan", "calmar": "-inf", "trades": 3}')
    stats = load_run(run_dir, with_bars=False).stats
    assert stats["sharpe"] != stats["sharpe"]
    assert stats["calmar"] == float("-inf") and stats["trades"] == 3


def test_changed_data_file_leaves_out_the_price_chart_and_says_why(
    tmp_path: Path, small_run: RunResult, data_copy: Path
) -> None:
    run_dir = write_run_dir(small_run, tmp_path / "runs", "run-a", data_copy)
    data_copy.write_bytes(data_copy.read_bytes() + b"\0")
    run = load_run(run_dir)
    assert run.bars == {}
    assert "has changed since the run" in run.notes[0]
    page = run_page(run)
    assert 'data-chart="price-0"' not in page
    assert "has changed since the run" in page
    assert 'data-chart="equity"' in page


def test_missing_data_file_leaves_out_the_price_chart_and_says_why(
    tmp_path: Path, small_run: RunResult, data_copy: Path
) -> None:
    run_dir = write_run_dir(small_run, tmp_path / "runs", "run-a", data_copy)
    data_copy.unlink()
    run = load_run(run_dir)
    assert run.bars == {}
    assert run.notes == (
        f"No price chart for BTC/USDT: the data file {data_copy.as_posix()} is not found.",
    )


def test_a_directory_without_a_manifest_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match=re.escape("not a run directory (no manifest.json)")):
        write_run_report(tmp_path)


def test_a_run_without_any_order_still_gets_every_chart() -> None:
    bars = pl.read_parquet(GOLDEN_BARS).head(60)
    result = Backtest(bars, SmaCross, cash=1_000).run(fast=10, slow=100)
    assert result.orders.height == 0
    assert result.bars is not None
    page = run_page(result_data(result, result.bars))
    assert page.count('data-chart="') == 7
    assert "Trade returns (0 closed trades)" in page
