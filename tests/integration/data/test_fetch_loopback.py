"""ccxt's real binance class against the loopback stub: exact data, faults, resume, kill -9."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import ccxt
import msgspec
import numpy as np
import pytest
import structlog
from binance_stub import BinanceStub, kline_row

from backtester.cli import main
from backtester.data.audit import audit_series
from backtester.data.catalog import list_series, read_series
from backtester.data.errors import FetchError
from backtester.data.fetch import FetchOptions, fetch
from backtester.data.fetch_exchange import ExchangeClient
from backtester.data.validation import Gap
from backtester.logs import configure_logging

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "data" / "fixtures"
SINCE, UNTIL = "2024-03-01", "2024-03-23"
T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC, the first served bar
MINUTE = 60_000


@pytest.fixture(scope="module")
def stub() -> Iterator[BinanceStub]:
    with BinanceStub() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_stub(stub: BinanceStub) -> None:
    stub.faults.clear()
    stub.delay_s = 0.0
    stub.retry_after = "0"
    stub.requests.clear()
    stub.arrivals.clear()
    stub.data_requests = 0


def options(stub: BinanceStub, root: Path, **changes: Any) -> FetchOptions:
    base = FetchOptions(
        exchange="binance",
        symbol="BTC/USDT",
        since=SINCE,
        until=UNTIL,
        root=str(root),
        api_url=stub.url,
        rate_limit_ms=1,
        retry_base_ms=1,
        timeout_ms=2_000,
        flush_rows=5_000,
    )
    return msgspec.structs.replace(base, **changes)


def kline_starts(stub: BinanceStub) -> list[int]:
    return [
        int(parse_qs(urlparse(r).query)["startTime"][0])
        for r in stub.requests
        if urlparse(r).path.endswith("/klines")
    ]


def catalog_state(root: Path) -> dict[str, Any]:
    """What must match between two catalogs: every manifest but its last-write report, and
    the bytes of every data file."""
    state: dict[str, Any] = {}
    for manifest in list_series(root):
        key = "/".join((manifest.exchange, manifest.market, manifest.symbol, manifest.timeframe))
        state[key] = msgspec.structs.replace(manifest, last_write=None)
    for path in sorted(root.rglob("*.parquet")):
        state[path.relative_to(root).as_posix()] = path.read_bytes()
    return state


@pytest.fixture(scope="module")
def clean_root(stub: BinanceStub, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clean")
    fetch(options(stub, root), interactive=False)
    return root


def test_a_bar_counts_the_bars_fetched(
    stub: BinanceStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = io.StringIO()
    monkeypatch.setattr("sys.stderr", terminal)
    day = options(stub, tmp_path, since="2024-03-01", until="2024-03-02")
    assert fetch(day, interactive=True).rows_stored == 1_440
    last = terminal.getvalue().split("\r")[-1]
    assert last.startswith("binance spot BTC/USDT 1m: 100%")
    assert "1440/1440" in last
    assert "rows=1440, to=2024-03-02 00:00" in last


def test_without_a_terminal_a_fetch_logs_what_it_got(
    stub: BinanceStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(json=True)
    try:
        fetch(options(stub, tmp_path, since="2024-03-01", until="2024-03-02"), interactive=False)
    finally:
        configure_logging(json=False)
        structlog.reset_defaults()
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    (finished,) = [e for e in events if e["event"] == "fetch finished"]
    assert finished["label"] == "binance spot BTC/USDT 1m"
    assert (finished["done"], finished["total"], finished["percent"]) == (1_440, 1_440, 100.0)
    assert finished["rows"] == 1_440
    assert not any("100%|" in json.dumps(e) for e in events)


def test_fetch_of_30900_bars_equals_the_served_data_exactly(
    stub: BinanceStub, clean_root: Path
) -> None:
    read = read_series(clean_root, "binance", "BTC/USDT", "1m", verify=True)
    served = np.array(stub.klines, dtype=np.float64)
    assert read.frame.height == 30_900
    assert np.array_equal(read.frame.to_numpy(), served)
    assert read.frame["timestamp_ms"].to_list() == stub.kline_times
    (manifest,) = list_series(clean_root)
    assert manifest.coverage == ((T0, 1_711_152_000_000),)  # up to --until, 2024-03-23
    # The served data ends 2024-03-22 10:59: the covered rest of the day is a recorded gap.
    assert manifest.gaps == (Gap(stub.kline_times[-1] + MINUTE, 1_711_152_000_000, 780),)
    assert audit_series(clean_root, manifest).ok


def test_second_fetch_of_the_same_range_requests_nothing(
    stub: BinanceStub, clean_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "copy"
    shutil.copytree(clean_root, root)
    summary = fetch(options(stub, root), interactive=False)
    assert (summary.requests, summary.rows_received) == (0, 0)
    assert kline_starts(stub) == []
    assert catalog_state(root) == catalog_state(clean_root)


def test_a_longer_range_requests_only_the_missing_part(
    stub: BinanceStub, clean_root: Path, tmp_path: Path
) -> None:
    fetch(options(stub, tmp_path, until="2024-03-10"), interactive=False)
    stub.requests.clear()
    fetch(options(stub, tmp_path), interactive=False)
    march_10 = 1_710_028_800_000
    assert min(kline_starts(stub)) == march_10
    assert catalog_state(tmp_path) == catalog_state(clean_root)


def test_injected_faults_are_retried_and_the_catalog_equals_a_clean_fetch(
    stub: BinanceStub, clean_root: Path, tmp_path: Path
) -> None:
    retried = [
        "429", "418", "500", "502-html", "503", "504", "timeout", "truncated", "empty-body",
        "html-body", "drop", "stale", "weight-exceeded",
    ]  # fmt: skip
    # Pages that repeat rows: starting before the cursor (ccxt drops those rows itself), rows
    # re-sent at the end of a page, and a partial candle sent before the final one.
    duplicated = ["overlap", "repeat", "repeat", "partial"]
    for fault in [*retried, *duplicated]:
        stub.faults.extend([fault, None])
    stub.timeout_sleep_s = 0.5
    summary = fetch(options(stub, tmp_path, timeout_ms=250), interactive=False)
    assert not stub.faults
    # At least one retry per fault; a loaded machine may add a real timeout of its own.
    assert summary.retries >= len(retried)
    assert summary.rows_received == 30_900 + 5 + 5 + 1
    assert catalog_state(tmp_path) == catalog_state(clean_root)


def test_requests_are_spaced_by_the_rate_limit(stub: BinanceStub, tmp_path: Path) -> None:
    stub.arrivals.clear()
    fetch(options(stub, tmp_path, rate_limit_ms=500, until="2024-03-03T12:00"), interactive=False)
    gaps = np.diff(stub.arrivals)
    assert len(gaps) == 3  # 3600 bars: pages of 1000, 1000, 1000 and 600, which reaches until
    # ccxt spaces binance klines by rateLimit x their weight cost (0.4): 200 ms here. The stub
    # stamps a request when its thread gets to it, so on a busy machine a late stamp shortens the
    # gap after it by that delay: the bound leaves 50 ms for it.
    assert gaps.min() >= 0.15


def test_retry_after_from_the_server_sets_the_backoff(stub: BinanceStub, tmp_path: Path) -> None:
    stub.retry_after = "2"
    stub.faults.append("429")
    sleeps: list[float] = []
    fetch(options(stub, tmp_path, until="2024-03-01T01:00"), sleep=sleeps.append)
    assert 2.0 in sleeps
    stub.retry_after = "3600"
    stub.faults.append("418")
    with pytest.raises(FetchError, match="asks to wait 3600 s"):
        fetch(options(stub, tmp_path, until="2024-03-02"), sleep=sleeps.append)


def test_exhausted_retries_stop_with_a_clear_error_and_keep_committed_rows(
    stub: BinanceStub, tmp_path: Path
) -> None:
    stub.faults.extend([None, None, "503", "503", "503"])
    with pytest.raises(
        FetchError, match="giving up after 3 attempts: HTTP 503 ExchangeNotAvailable"
    ):
        fetch(options(stub, tmp_path, max_retries=2, flush_rows=1_000), interactive=False)
    (manifest,) = list_series(tmp_path)
    assert manifest.rows == 2_000
    assert audit_series(tmp_path, manifest).ok


def test_unknown_symbol_and_refused_credentials_stop_without_retrying(
    stub: BinanceStub, tmp_path: Path
) -> None:
    with pytest.raises(FetchError, match="no spot market 'DOGE/USDT'"):
        fetch(options(stub, tmp_path, symbol="DOGE/USDT"), interactive=False)
    stub.faults.append("bad-symbol")
    with pytest.raises(FetchError, match="unknown symbol"):
        fetch(options(stub, tmp_path), interactive=False)
    stub.faults.append("auth")
    with pytest.raises(FetchError, match="refused the request"):
        fetch(options(stub, tmp_path), interactive=False)
    assert stub.data_requests == 2
    assert list_series(tmp_path) == []


def test_the_still_open_candle_is_never_stored(stub: BinanceStub, tmp_path: Path) -> None:
    now = T0 + 1_500 * MINUTE + 30_000  # half-way through the bar opening at T0 + 1500 min
    fetch(options(stub, tmp_path, until=None), now_ms=now, interactive=False)
    (manifest,) = list_series(tmp_path)
    assert manifest.last_ms == T0 + 1_499 * MINUTE
    assert manifest.coverage == ((T0, T0 + 1_500 * MINUTE),)
    stub.requests.clear()
    fetch(options(stub, tmp_path, until=None), now_ms=now + 10 * MINUTE, interactive=False)
    assert kline_starts(stub)[0] == T0 + 1_500 * MINUTE
    (manifest,) = list_series(tmp_path)
    assert manifest.last_ms == T0 + 1_509 * MINUTE
    # A bar that closed less than close_margin_ms ago waits for the next fetch: the local clock
    # may run ahead of the exchange's.
    just_closed = T0 + 1_520 * MINUTE + 2_000
    fetch(options(stub, tmp_path, until=None), now_ms=just_closed, interactive=False)
    (manifest,) = list_series(tmp_path)
    assert manifest.last_ms == T0 + 1_518 * MINUTE


class InterruptedClient(ExchangeClient):
    """Raises KeyboardInterrupt, as Ctrl-C would, on the n-th page request."""

    def __init__(self, stub: BinanceStub, pages: int) -> None:
        super().__init__("binance", "spot", api_url=stub.url, rate_limit_ms=1)
        self.pages_left = pages

    def ohlcv_page(self, *args: Any, **kwargs: Any) -> list[list[float]]:
        self.pages_left -= 1
        if self.pages_left < 0:
            raise KeyboardInterrupt
        return super().ohlcv_page(*args, **kwargs)


def test_ctrl_c_commits_what_arrived_and_the_next_fetch_resumes_there(
    stub: BinanceStub, clean_root: Path, tmp_path: Path
) -> None:
    with pytest.raises(KeyboardInterrupt):
        fetch(options(stub, tmp_path), client=InterruptedClient(stub, 11), interactive=False)
    (manifest,) = list_series(tmp_path)
    assert manifest.rows == 11_000  # two flushes of 5000 plus the 1000 held at Ctrl-C
    assert manifest.coverage == ((T0, T0 + 11_000 * MINUTE),)
    stub.requests.clear()
    fetch(options(stub, tmp_path), interactive=False)
    assert kline_starts(stub)[0] == T0 + 11_000 * MINUTE
    assert catalog_state(tmp_path) == catalog_state(clean_root)


def cli_fetch(stub: BinanceStub, root: Path, *extra: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "backtester", "--log-json", "data", "fetch",
        "--exchange", "binance", "--symbol", "BTC/USDT", "--since", SINCE, "--until", UNTIL,
        "--root", str(root), "--api-url", stub.url, "--rate-limit-ms", "1",
        "--retry-base-ms", "1", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        command, cwd=root.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_kill_9_mid_fetch_then_resume_equals_a_clean_fetch(
    stub: BinanceStub, clean_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "catalog"
    stub.delay_s = 0.05
    process = cli_fetch(stub, root, "--flush-rows", "2000")
    deadline = time.monotonic() + 60
    while stub.data_requests < 15 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL

    (killed,) = list_series(root)
    assert 0 < killed.rows < 30_900
    assert audit_series(root, killed).ok  # consistent; at most a leftover file
    stub.delay_s = 0.0
    stub.requests.clear()
    resumed = cli_fetch(stub, root)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err.decode()
    assert kline_starts(stub)[0] == killed.coverage[-1][1]
    assert "30900 rows" in out.decode()
    assert catalog_state(root) == catalog_state(clean_root)


def test_a_range_without_data_is_recorded_as_covered(stub: BinanceStub, tmp_path: Path) -> None:
    opts = options(stub, tmp_path, since="2024-04-01", until="2024-04-02")
    # The empty page, asked twice more, then a probe of the range's last page.
    assert fetch(opts, interactive=False).requests == 4
    (manifest,) = list_series(tmp_path)
    day = (1_711_929_600_000, 1_712_016_000_000)
    assert (manifest.rows, manifest.files, manifest.coverage) == (0, (), (day,))
    assert manifest.gaps == (Gap(*day, 1_440),)
    assert audit_series(tmp_path, manifest).ok
    assert read_series(tmp_path, "binance", "BTC/USDT", "1m").frame.height == 0
    assert fetch(opts, interactive=False).requests == 0


def test_funding_rate_history_is_stored_like_candles(stub: BinanceStub, tmp_path: Path) -> None:
    opts = options(
        stub, tmp_path, symbol="XRP/USDT", market="swap", kind="funding", since="2021-11-01",
        until="2022-01-01", page_limit=20,
    )  # fmt: skip
    summary = fetch(opts, interactive=False)
    assert summary.series == "binance swap XRP/USDT:USDT funding"
    # 91 rates in pages of 20, the empty page asked three times, a probe of the last page.
    assert summary.requests == 9
    assert summary.empty_ranges == ((stub.funding_times[-1] + 1, 1_640_995_200_000),)
    read = read_series(tmp_path, "binance", "XRP/USDT:USDT", "funding", market="swap")
    assert read.frame.rows() == [(int(t), float(r)) for t, r in stub.funding]
    assert read.partitions[0].path.startswith("binance/swap/XRP-USDT-USDT/funding/year=2021/")
    assert fetch(opts, interactive=False).requests == 0
    with pytest.raises(FetchError, match="contracts only: pass --market swap"):
        fetch(options(stub, tmp_path, kind="funding"), interactive=False)


def test_swap_candles_come_from_the_futures_api(stub: BinanceStub, tmp_path: Path) -> None:
    opts = options(stub, tmp_path, market="swap", until="2024-03-01T02:00")
    assert fetch(opts, interactive=False).rows_stored == 120
    assert any(r.startswith("/fapi/v1/klines?") for r in stub.requests)
    assert (tmp_path / "binance" / "swap" / "BTC-USDT-USDT" / "1m" / "manifest.json").is_file()


def test_command_line_fetch_reads_a_toml_config_and_flags_override_it(
    stub: BinanceStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "fetch.toml"
    config.write_text(
        "[fetch]\n"
        'exchange = "binance"\nsymbol = "BTC/USDT"\nsince = "2024-03-01"\n'
        f'until = "2024-03-05"\napi_url = "{stub.url}"\nrate_limit_ms = 1\n'
        f'root = "{tmp_path / "from-config"}"\n',
        encoding="utf-8",
    )
    root = tmp_path / "from-flag"
    args = ["data", "fetch", "--config", str(config), "--until", "2024-03-01T03:00"]
    assert main([*args, "--root", str(root)]) == 0
    assert "180 rows" in capsys.readouterr().out
    assert [m.rows for m in list_series(root)] == [180]
    assert not (tmp_path / "from-config").exists()
    assert main(["data", "fetch", "--config", str(config), "--since", "soon"]) == 2
    assert "'soon'" in capsys.readouterr().err


def test_stub_serves_klines_in_the_shape_binance_recorded_for_ccxt() -> None:
    recorded = json.loads((FIXTURES / "ccxt_static_binance_fetchOHLCV.json").read_text())
    spot = recorded["fetchOHLCV"][0]
    exchange = ccxt.binance()
    assert exchange.parse_ohlcvs(spot["httpResponse"]) == spot["parsedResponse"]
    real = spot["httpResponse"][0]
    served = kline_row(spot["parsedResponse"][0], 3_600_000)
    assert [type(v) for v in served] == [type(v) for v in real]
    assert served[0] == real[0]
    assert exchange.parse_ohlcvs([served]) == spot["parsedResponse"][:1]
