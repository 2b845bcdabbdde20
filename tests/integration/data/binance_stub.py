"""A loopback stand-in for Binance's public REST API: real recorded data, injectable faults.

ccxt's own `binance` class talks to it over HTTP (every `urls['api']` entry redirected, which is
what `--api-url` does). Served: spot, USD-M and COIN-M `exchangeInfo` (USD-M: the recorded-shape
fixture of four perpetuals and a quarterly future), spot and USD-M `klines`, USD-M
`markPriceKlines` and `fundingRate`, with Binance's documented paging semantics (rows with
startTime <= t <= endTime, the first `limit` of them), and the signed USD-M `leverageBracket`
(API key in the X-MBX-APIKEY header, HMAC-SHA256 signature of the query, as Binance checks them;
brackets rebuilt from the shipped ccxt tiers' raw `info`). Faults are queued in `faults`, one per
data request.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import polars as pl

DATA = Path(__file__).resolve().parents[2] / "data"
FIXTURES = DATA / "fixtures"
API_KEY = "stub-api-key-7f3a"
API_SECRET = "stub-api-secret-c9d1e2"
STEP_MS = {"1m": 60_000, "1h": 3_600_000}
FAULTS = (
    "429",
    "418",
    "500",
    "502-html",
    "503",
    "504",
    "timeout",
    "hang",
    "truncated",
    "empty-page",
    "500-json",
    "503-json",
    "503-overloaded",
    "empty-body",
    "html-body",
    "drop",
    "overlap",
    "stale",
    "repeat",
    "partial",
    "weight-exceeded",
    "bad-symbol",
    "auth",
)
# Binance's 5xx answers carry a JSON error code, not an empty body.
_JSON_5XX = {
    "500-json": (500, b'{"code": -1000, "msg": "An unknown error occurred while processing the request."}'),
    "503-json": (503, b'{"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}'),
    "503-overloaded": (503, b'{"code": -1008, "msg": "Server is currently overloaded with other requests. Please try again in a few minutes."}'),
}  # fmt: skip
_LOT = {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000", "stepSize": "0.00001"}


def load_klines(path: Path = DATA / "binance_BTC-USDT_1m.csv") -> list[tuple[Any, ...]]:
    """Rows as the exchange holds them: one per open time (the final candle of any duplicate)."""
    frame = pl.read_csv(path).unique("timestamp_ms", keep="last", maintain_order=True)
    return list(frame.sort("timestamp_ms").iter_rows())


def load_funding(
    path: Path = DATA / "freqtrade_XRP-USDT-USDT_8h_funding_rate.csv",
) -> list[tuple[Any, ...]]:
    return list(pl.read_csv(path).sort("timestamp_ms").iter_rows())


def load_marks(
    path: Path = DATA / "freqtrade_XRP-USDT-USDT_1h_mark.csv",
) -> list[tuple[Any, ...]]:
    """XRP/USDT:USDT mark-price candles; Binance publishes no volume for them."""
    frame = pl.read_csv(path).sort("timestamp_ms").with_columns(pl.lit(0.0).alias("volume"))
    return list(frame.iter_rows())


def leverage_brackets(
    path: Path = FIXTURES / "ccxt_binance_leverage_tiers_subset.json",
) -> list[dict[str, Any]]:
    """`GET /fapi/v1/leverageBracket` as Binance documents it (numbers, not text), rebuilt from
    the raw bracket rows ccxt kept in each tier's `info`."""
    tiers = json.loads(path.read_text())
    answer = []
    for symbol, rows in tiers.items():
        brackets = [
            {
                "bracket": int(row["info"]["bracket"]),
                "initialLeverage": int(row["info"]["initialLeverage"]),
                "notionalCap": _number(row["info"]["notionalCap"]),
                "notionalFloor": _number(row["info"]["notionalFloor"]),
                "maintMarginRatio": float(row["info"]["maintMarginRatio"]),
                "cum": float(row["info"]["cum"]),
            }
            for row in rows
        ]
        answer.append({"symbol": symbol.split(":")[0].replace("/", ""), "brackets": brackets})
    return answer


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def _spot_symbol(symbol: str, base: str, quote: str) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "quoteAsset": quote,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.01",
                "maxPrice": "1000000",
                "tickSize": "0.01",
            },
            _LOT,
            {"filterType": "NOTIONAL", "minNotional": "5"},
        ],
    }


EXCHANGE_INFO = {
    "/api/v3/exchangeInfo": {
        "timezone": "UTC",
        "serverTime": 1711105200000,
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": [_spot_symbol("BTCUSDT", "BTC", "USDT")],
    },
    "/fapi/v1/exchangeInfo": json.loads(
        (FIXTURES / "binance_fapi_exchangeInfo_subset.json").read_text()
    ),
    "/dapi/v1/exchangeInfo": {
        "timezone": "UTC",
        "serverTime": 1711105200000,
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": [],
    },
}


class BinanceStub:
    def __init__(
        self,
        klines: Sequence[tuple[Any, ...]] | None = None,
        funding: Sequence[tuple[Any, ...]] | None = None,
        marks: Sequence[tuple[Any, ...]] | None = None,
    ) -> None:
        self.klines = list(klines if klines is not None else load_klines())
        self.kline_times = [int(r[0]) for r in self.klines]
        self.marks = list(marks if marks is not None else load_marks())
        self.mark_times = [int(r[0]) for r in self.marks]
        self.brackets = leverage_brackets()
        self.funding = list(funding if funding is not None else load_funding())
        self.funding_times = [int(r[0]) for r in self.funding]
        # One entry per data request; None serves that request normally.
        self.faults: deque[str | None] = deque()
        self.delay_s = 0.0
        self.timeout_sleep_s = 1.0
        self.hang_s = 5.0  # "hang": no answer for this long, then the connection is closed
        self.overlap_rows = 7
        self.retry_after = "0"
        self.requests: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.arrivals: list[float] = []  # time.monotonic() of each data request
        self.data_requests = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> BinanceStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def next_fault(self) -> str | None:
        with self.lock:
            self.data_requests += 1
            self.arrivals.append(time.monotonic())
            return self.faults.popleft() if self.faults else None

    def kline_body(
        self, query: dict[str, str], *, fault: str | None, mark: bool = False
    ) -> list[list[Any]]:
        step = STEP_MS[query.get("interval", "1m")]
        limit = min(int(query.get("limit", 500)), 1000)
        start = int(query["startTime"]) if "startTime" in query else None
        end = int(query["endTime"]) if "endTime" in query else None
        if start is not None:
            if fault == "overlap":
                start -= self.overlap_rows * step
            elif fault == "stale":
                start -= 2 * limit * step
        if mark:
            rows = _select(self.marks, self.mark_times, start, end, limit)
        else:
            rows = _select(self.klines, self.kline_times, start, end, limit)
        if fault == "repeat" and rows:
            rows = rows + rows[:5]  # re-sent rows, as a client re-fetching a page boundary sees
        elif fault == "partial" and rows:
            first = rows[0]
            rows = [(*first[:5], first[5] / 2), *rows]  # the still-open candle, then the final one
        return [kline_row(row, step) for row in rows]

    def bracket_body(self, query: dict[str, str]) -> list[dict[str, Any]]:
        wanted = query.get("symbol")
        return [b for b in self.brackets if wanted is None or b["symbol"] == wanted]

    def funding_body(self, query: dict[str, str]) -> list[dict[str, Any]]:
        limit = min(int(query.get("limit", 100)), 1000)
        start = int(query["startTime"]) if "startTime" in query else None
        end = int(query["endTime"]) if "endTime" in query else None
        rows = _select(self.funding, self.funding_times, start, end, limit)
        return [
            {
                "symbol": query.get("symbol", ""),
                "fundingTime": int(t),
                "fundingRate": repr(rate),
                "markPrice": "",
            }
            for t, rate in rows
        ]


def kline_row(row: Sequence[Any], step_ms: int) -> list[Any]:
    """Binance's 12-field kline: prices and volumes as decimal strings, as the real API sends."""
    t, o, h, lo, c, v = row[:6]
    return [int(t), str(o), str(h), str(lo), str(c), str(v), int(t) + step_ms - 1, "0", 0, "0",
            "0", "0"]  # fmt: skip


_DATA_PATHS = (
    "/api/v3/klines",
    "/fapi/v1/klines",
    "/fapi/v1/markPriceKlines",
    "/fapi/v1/fundingRate",
)


def _select(
    rows: list[tuple[Any, ...]], keys: list[int], start: int | None, end: int | None, limit: int
) -> list[tuple[Any, ...]]:
    if start is not None:
        chosen = rows[bisect.bisect_left(keys, start) :]
        if end is not None:
            chosen = chosen[: bisect.bisect_right(keys, end) - bisect.bisect_left(keys, start)]
        return chosen[:limit]
    if end is not None:
        return rows[: bisect.bisect_right(keys, end)][-limit:]
    return rows[-limit:]


def _handler_for(stub: BinanceStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate sends; without this each request waits ~40 ms
        # for a delayed ACK.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            with stub.lock:
                stub.requests.append(self.path)
                stub.headers.append(dict(self.headers.items()))
            try:
                self._serve(url.path, query, url.query)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client gave up (timeout test): nothing to answer

        def _serve(self, path: str, query: dict[str, str], raw_query: str) -> None:
            if path == "/fapi/v1/leverageBracket":
                self._signed(raw_query, lambda: stub.bracket_body(query))
                return
            if path in EXCHANGE_INFO:
                self._send(200, json.dumps(EXCHANGE_INFO[path]).encode())
                return
            if path == "/api/v3/time":
                self._send(200, b'{"serverTime": 1711105200000}')
                return
            if path not in _DATA_PATHS:
                self._send(404, b'{"code": -1, "msg": "not found"}')
                return
            if stub.delay_s:
                time.sleep(stub.delay_s)
            fault = stub.next_fault()
            if fault is not None and self._inject(fault):
                return
            if path.endswith("fundingRate"):
                payload: Any = stub.funding_body(query)
            else:
                payload = stub.kline_body(query, fault=fault, mark=path.endswith("markPriceKlines"))
            body = json.dumps(payload).encode()
            if fault == "truncated":
                body = body[: max(len(body) // 2, 1)]
            self._send(200, body)

        def _signed(self, raw_query: str, answer: Any) -> None:
            """Binance's checks of a USER_DATA request: the key, then the query's signature."""
            if self.headers.get("X-MBX-APIKEY") != API_KEY:
                body = b'{"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}'
                self._send(401, body)
                return
            signed, _, signature = raw_query.rpartition("&signature=")
            expected = hmac.new(API_SECRET.encode(), signed.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(signature, expected):
                body = b'{"code": -1022, "msg": "Signature for this request is not valid."}'
                self._send(400, body)
                return
            self._send(200, json.dumps(answer()).encode())

        def _inject(self, fault: str) -> bool:
            """Answer with the fault and return True, or return False to serve (changed) data."""
            if fault in ("429", "418"):
                body = b'{"code": -1003, "msg": "Too many requests; current limit exceeded."}'
                self._send(int(fault), body, {"Retry-After": stub.retry_after})
            elif fault == "weight-exceeded":
                # Binance's "too much request weight" code on a non-429 status.
                body = b'{"code": -1003, "msg": "Too much request weight used."}'
                self._send(400, body)
            elif fault in ("500", "503", "504"):
                self._send(int(fault), b"")
            elif fault == "502-html":
                self._send(502, b"<html><body>502 Bad Gateway</body></html>", content="text/html")
            elif fault == "timeout":
                time.sleep(stub.timeout_sleep_s)
                return False
            elif fault == "hang":
                time.sleep(stub.hang_s)
                self.close_connection = True
                self.connection.close()
            elif fault == "empty-page":
                self._send(200, b"[]")  # a well-formed answer claiming there are no bars here
            elif fault in _JSON_5XX:
                status, body = _JSON_5XX[fault]
                self._send(status, body)
            elif fault == "empty-body":
                self._send(200, b"")
            elif fault == "html-body":
                self._send(200, b"<html><body>maintenance</body></html>", content="text/html")
            elif fault == "drop":
                self.close_connection = True
                self.connection.close()
            elif fault == "bad-symbol":
                self._send(400, b'{"code": -1121, "msg": "Invalid symbol."}')
            elif fault == "auth":
                body = b'{"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}'
                self._send(401, body)
            else:
                return False
            return True

        def _send(
            self,
            code: int,
            body: bytes,
            headers: dict[str, str] | None = None,
            content: str = "application/json",
        ) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


def main() -> None:
    """Serve until interrupted, for trying the command line by hand."""
    with BinanceStub() as stub:
        print(stub.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
