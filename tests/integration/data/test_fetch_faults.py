"""Fault injection for `data fetch`: after every fault the catalog holds, row for row, what the
loopback exchange served, and its manifest claims nothing it did not store.

Faults: a well-formed empty page before the end, Binance's 5xx answers with JSON error bodies, a
request that hangs, a truncated body, an unreachable host, and errors after pages were fetched.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from binance_stub import BinanceStub

from backtester.cli import main
from backtester.data.audit import audit_series
from backtester.data.catalog import list_series, read_series
from backtester.data.errors import FetchError
from backtester.data.fetch import FetchOptions, fetch
from backtester.data.series_manifest import SeriesManifest
from backtester.data.timeframes import parse_utc_ms
from backtester.data.validation import Gap

REPO = Path(__file__).resolve().parents[3]
MINUTE = 60_000
SINCE, UNTIL = "2024-03-01", "2024-03-03"
START, END = parse_utc_ms(SINCE), parse_utc_ms(UNTIL)
PAGE = 500  # rows per request: 2880 bars are 6 pages


@pytest.fixture(scope="module")
def stub() -> Iterator[BinanceStub]:
    with BinanceStub() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_stub(stub: BinanceStub) -> None:
    stub.faults.clear()
    stub.delay_s = 0.0
    stub.requests.clear()
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
        page_limit=PAGE,
    )
    return msgspec.structs.replace(base, **changes)


def served(stub: BinanceStub, start: int, end: int) -> np.ndarray[Any, Any]:
    rows = [r for r in stub.klines if start <= r[0] < end]
    return np.array(rows, dtype=np.float64).reshape(-1, 6)


def stored(root: Path) -> np.ndarray[Any, Any]:
    frame = read_series(root, "binance", "BTC/USDT", "1m", verify=True).frame
    return frame.to_numpy().astype(np.float64).reshape(-1, 6)


def only_manifest(root: Path) -> SeriesManifest:
    (manifest,) = list_series(root)
    return manifest


def assert_consistent(root: Path) -> SeriesManifest:
    """The manifest matches its files, and `data validate` agrees with it."""
    manifest = only_manifest(root)
    audit = audit_series(root, manifest)
    assert audit.ok, audit.errors
    return manifest


def test_an_empty_page_before_the_end_is_retried_and_every_served_row_is_stored(
    stub: BinanceStub, tmp_path: Path
) -> None:
    stub.faults.extend([None, "empty-page"])
    summary = fetch(options(stub, tmp_path), interactive=False)
    assert np.array_equal(stored(tmp_path), served(stub, START, END))
    manifest = assert_consistent(tmp_path)
    assert manifest.rows == 2_880
    assert manifest.gaps == ()
    assert manifest.coverage == ((START, END),)
    assert summary.retries == 1


def test_empty_pages_the_exchange_insists_on_become_a_recorded_gap_and_paging_goes_on(
    stub: BinanceStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The second page is empty however often it is asked for; the exchange has bars after it.
    stub.faults.extend([None, "empty-page", "empty-page", "empty-page"])
    hole = (START + PAGE * MINUTE, START + 2 * PAGE * MINUTE)
    args = ["data", "fetch", "--exchange", "binance", "--symbol", "BTC/USDT", "--since", SINCE]
    args += ["--until", UNTIL, "--root", str(tmp_path), "--api-url", stub.url]
    args += ["--rate-limit-ms", "1", "--retry-base-ms", "1", "--page-limit", str(PAGE)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1 gaps" in out
    assert "no bars at the exchange from 2024-03-01 08:20 to 2024-03-01 16:40" in out
    expected = np.concatenate([served(stub, START, hole[0]), served(stub, hole[1], END)])
    assert np.array_equal(stored(tmp_path), expected)
    manifest = assert_consistent(tmp_path)
    assert manifest.gaps == (Gap(hole[0], hole[1], PAGE),)
    assert manifest.coverage == ((START, END),)
    # The gap is the exchange's answer, recorded: a second fetch does not ask again.
    assert fetch(options(stub, tmp_path), interactive=False).requests == 0


def test_a_historical_range_past_the_exchange_data_records_the_tail_as_a_gap(
    stub: BinanceStub, tmp_path: Path
) -> None:
    last = stub.kline_times[-1]  # 2024-03-22T10:59
    since, until = "2024-03-22", "2024-03-23"
    fetch(options(stub, tmp_path, since=since, until=until), interactive=False)
    start, end = parse_utc_ms(since), parse_utc_ms(until)
    assert np.array_equal(stored(tmp_path), served(stub, start, end))
    manifest = assert_consistent(tmp_path)
    assert manifest.last_ms == last
    assert manifest.coverage == ((start, end),)
    assert manifest.gaps == (Gap(last + MINUTE, end, (end - last) // MINUTE - 1),)


def test_at_the_live_edge_coverage_ends_with_the_last_stored_bar(
    stub: BinanceStub, tmp_path: Path
) -> None:
    last = stub.kline_times[-1]
    now = last + 30 * MINUTE  # the exchange lags: its newest bar is half an hour old
    fetch(options(stub, tmp_path, since="2024-03-22", until=None), now_ms=now, interactive=False)
    manifest = assert_consistent(tmp_path)
    assert manifest.last_ms == last
    assert manifest.coverage == ((parse_utc_ms("2024-03-22"), last + MINUTE),)
    assert manifest.gaps == ()
    stub.requests.clear()
    fetch(options(stub, tmp_path, since="2024-03-22", until=None), now_ms=now, interactive=False)
    assert any(f"startTime={last + MINUTE}" in r for r in stub.requests)


def test_binance_5xx_answers_with_json_error_codes_are_retried(
    stub: BinanceStub, tmp_path: Path
) -> None:
    stub.faults.extend([None, "500-json", None, "503-json", "503-overloaded", None, "504"])
    summary = fetch(options(stub, tmp_path), interactive=False)
    assert summary.retries == 4
    assert np.array_equal(stored(tmp_path), served(stub, START, END))
    assert assert_consistent(tmp_path).coverage == ((START, END),)


def test_pages_fetched_before_a_fatal_error_are_committed(
    stub: BinanceStub, tmp_path: Path
) -> None:
    stub.faults.extend([None, None, *["503-overloaded"] * 3])
    with pytest.raises(FetchError, match="giving up after 3 attempts"):
        fetch(options(stub, tmp_path, max_retries=2), interactive=False)
    two_pages = START + 2 * PAGE * MINUTE
    assert np.array_equal(stored(tmp_path), served(stub, START, two_pages))
    manifest = assert_consistent(tmp_path)
    assert manifest.coverage == ((START, two_pages),)
    stub.requests.clear()
    fetch(options(stub, tmp_path), interactive=False)
    assert np.array_equal(stored(tmp_path), served(stub, START, END))
    klines = [r for r in stub.requests if "/klines?" in r]
    assert f"startTime={two_pages}" in klines[0]


def test_a_request_that_hangs_times_out_and_is_retried(stub: BinanceStub, tmp_path: Path) -> None:
    # A hang far longer than the whole fetch may take even on a loaded machine: finishing before
    # it ends proves it was not waited out, with no bound on how fast the fetch itself is.
    stub.hang_s = 30.0
    stub.faults.extend([None, "hang", None, "truncated"])
    started = time.monotonic()
    summary = fetch(options(stub, tmp_path, timeout_ms=300), interactive=False)
    assert time.monotonic() - started < stub.hang_s / 2
    assert summary.retries >= 2
    assert np.array_equal(stored(tmp_path), served(stub, START, END))
    assert assert_consistent(tmp_path).gaps == ()


def test_every_fault_at_once_still_gives_the_served_rows(stub: BinanceStub, tmp_path: Path) -> None:
    stub.hang_s = 1.0
    for fault in ("empty-page", "500-json", "hang", "truncated", "503-overloaded", "empty-body"):
        stub.faults.extend([fault, None])
    fetch(options(stub, tmp_path, timeout_ms=300), interactive=False)
    assert not stub.faults
    assert np.array_equal(stored(tmp_path), served(stub, START, END))
    assert assert_consistent(tmp_path).gaps == ()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("api_url", "reason"),
    [
        (f"http://127.0.0.1:{_closed_port()}", "refused the connection"),
        ("http://exchange.invalid", "host name exchange.invalid does not resolve"),
    ],
    ids=["refused", "unresolved"],  # not the port: the same test ids in every collecting process
)
def test_an_unreachable_host_is_reported_after_the_first_attempts(
    tmp_path: Path, api_url: str, reason: str
) -> None:
    opts = FetchOptions(
        exchange="binance", symbol="BTC/USDT", since=SINCE, until=UNTIL, root=str(tmp_path),
        api_url=api_url, retry_base_ms=1,
    )  # fmt: skip
    sleeps: list[float] = []
    with pytest.raises(FetchError, match=reason) as caught:
        fetch(opts, sleep=sleeps.append, interactive=False)
    assert len(sleeps) == 1  # one retry, not max_retries (8) of them
    assert "Offline?" in str(caught.value)
    assert list_series(tmp_path) == []


def test_credentials_in_the_api_url_never_reach_logs_errors_or_the_manifest(
    stub: BinanceStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_url = stub.url.replace("http://", "http://trader:hunter2@")
    stub.faults.extend([None, "503", "503-overloaded"])
    fetch(options(stub, tmp_path, api_url=secret_url), interactive=False)
    stub.faults.extend(["503"] * 2)
    with pytest.raises(FetchError) as caught:
        fetch(options(stub, tmp_path, api_url=secret_url, until="2024-03-04", max_retries=1))
    captured = capsys.readouterr()
    assert "fetch retry" in captured.out + captured.err
    assert "trader:***@" in str(caught.value)
    for text in (captured.out, captured.err, str(caught.value)):
        assert "hunter2" not in text
    for path in tmp_path.rglob("*.json"):
        assert "hunter2" not in path.read_text()


def test_a_catalog_that_cannot_be_written_is_named_before_any_request(
    stub: BinanceStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "catalog"
    blocker.write_text("")
    args = ["data", "fetch", "--exchange", "binance", "--symbol", "BTC/USDT", "--since", SINCE]
    args += ["--until", UNTIL, "--root", str(blocker / "data"), "--api-url", stub.url]
    assert main(args) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"error: cannot write the catalog {blocker / 'data'}: {blocker} is not a directory"
    )
    assert stub.requests == []  # nothing downloaded only to be thrown away


def test_a_fetch_past_the_file_size_limit_stops_with_one_line_keeping_what_was_committed(
    stub: BinanceStub, tmp_path: Path
) -> None:
    root = tmp_path / "catalog"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (96 * 1024, 96 * 1024))

    command = [
        sys.executable, "-m", "backtester", "data", "fetch", "--exchange", "binance",
        "--symbol", "BTC/USDT", "--since", "2024-03-01", "--until", "2024-03-15",
        "--root", str(root), "--api-url", stub.url, "--rate-limit-ms", "1",
        "--flush-rows", "2000",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180,
        check=False, preexec_fn=limit,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {root}/binance/spot/BTC-USDT/1m/")
    assert line.endswith("File too large")
    # What was committed before the limit is intact and claims nothing more.
    manifest = assert_consistent(root)
    assert 0 < manifest.rows < 20_160
    assert manifest.coverage == ((START, START + manifest.rows * MINUTE),)
    assert np.array_equal(stored(root), served(stub, START, START + manifest.rows * MINUTE))
