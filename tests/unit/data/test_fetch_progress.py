import io
import json

import pytest
import structlog

from backtester.data.fetch_progress import FetchProgress
from backtester.logs import configure_logging

T0 = 1_709_251_200_000
DAY = 86_400_000


def test_terminal_gets_a_redrawn_bar_with_rows_range_and_rate() -> None:
    stream = io.StringIO()
    progress = FetchProgress("binance spot BTC/USDT 1m", 4 * DAY, stream=stream, interactive=True)
    progress.update(rows=1_000, advanced_ms=DAY, first_ms=T0, cursor_ms=T0 + DAY)
    progress.close()
    last = stream.getvalue().split("\r")[-1]
    assert last.startswith("binance spot BTC/USDT 1m [######------------------]  25.0% 1,000 rows")
    assert "2024-03-01 00:00 -> 2024-03-02 00:00" in last
    assert last.endswith("rows/s\n")


def test_without_a_terminal_progress_is_plain_log_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(json=True)
    try:
        progress = FetchProgress("s", 2 * DAY, stream=io.StringIO(), interactive=False)
        progress.update(rows=10, advanced_ms=DAY, first_ms=T0, cursor_ms=T0 + DAY)
        progress.close()
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["fetch progress", "fetch finished"]
    assert lines[-1]["percent"] == 50.0
    assert lines[-1]["rows"] == 10
