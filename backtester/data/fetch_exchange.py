"""The only module that talks to ccxt: one exchange client, its errors turned into ours.

ccxt is used synchronously (adr/0010): paging is sequential by nature (each request starts where the
previous page ended) and the exchange's rate limit, not latency, bounds the speed, so async buys
nothing here and would complicate Ctrl-C and cleanup.

Errors: ccxt's OperationFailed family (DDoSProtection, RateLimitExceeded, ExchangeNotAvailable,
RequestTimeout, NetworkError, and the OperationFailed that binance raises for its -1000/-1001 codes),
any answer with an HTTP 5xx status whatever its body says, and malformed bodies become
`TransientError` (the caller retries with backoff). A host that cannot be resolved or reached is an
`UnreachableError`: retried briefly, as a laptop may just be waking up, then reported as such.
BadSymbol, authentication errors and any other exchange error become `FetchError` (the caller stops
with that message). Messages pass through `redact`: an API URL may carry credentials.
"""

from __future__ import annotations

import errno
import re
import socket
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt

from backtester.data.connection import Connection
from backtester.data.errors import FetchError
from backtester.data.redaction import redact

T = TypeVar("T")
CCXT_VERSION = str(ccxt.__version__)
_SWAP_MARKET_TYPES = ("swap", "linear", "inverse")
_URL = re.compile(r"\bhttps?://[^\s'\"]+")


class TransientError(Exception):
    """A failure worth retrying; `retry_after_s` is the server's Retry-After, if it sent one."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UnreachableError(TransientError):
    """The exchange's host does not resolve or does not accept connections; the message says which."""


_NO_ROUTE = (errno.ENETUNREACH, errno.EHOSTUNREACH)


def unreachable_reason(exc: BaseException, host: str) -> str | None:
    """Why no connection to `host` could be made, if that is what `exc` (or one under it) says."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return f"the host name {host.rsplit(':', 1)[0]} does not resolve"
        if isinstance(current, ConnectionRefusedError):
            return f"{host} refused the connection"
        if isinstance(current, OSError) and current.errno in _NO_ROUTE:
            return f"{host} is unreachable (no route to it)"
        current = current.__cause__ or current.__context__
    return None


def redirect_urls(urls: Any, base_url: str) -> Any:
    """Every API URL of an exchange moved to `base_url`, keeping each path.

    All entries must move: ccxt deep-merges the config, so an entry left out would still point at
    the real exchange (e.g. binance's futures `exchangeInfo`, requested by `load_markets`).
    """
    base = base_url.rstrip("/")
    if isinstance(urls, str):
        return base + urlsplit(urls).path
    if isinstance(urls, Mapping):
        return {k: redirect_urls(v, base_url) for k, v in urls.items()}
    return urls


class ExchangeClient:
    def __init__(
        self,
        exchange_id: str,
        market: str,
        *,
        api_url: str | None = None,
        rate_limit_ms: int | None = None,
        timeout_ms: int = 10_000,
    ) -> None:
        exchange_class = getattr(ccxt, exchange_id, None)
        if not (isinstance(exchange_class, type) and issubclass(exchange_class, ccxt.Exchange)):
            raise FetchError(f"ccxt knows no exchange {exchange_id!r}")
        prototype = exchange_class()
        options: dict[str, Any] = {"defaultType": market}
        config: dict[str, Any] = {"enableRateLimit": True, "timeout": timeout_ms}
        if rate_limit_ms is not None:
            config["rateLimit"] = rate_limit_ms
        if api_url:
            if urlsplit(api_url).scheme not in ("http", "https") or not urlsplit(api_url).netloc:
                raise FetchError(f"api_url {api_url!r} must look like http(s)://host[:port][/path]")
            config["urls"] = {"api": redirect_urls(prototype.urls["api"], api_url)}
        listed = prototype.options.get("fetchMarkets")
        if isinstance(listed, Mapping) and isinstance(listed.get("types"), list):
            # Load only the market types we need: fewer requests, and no request to an API
            # family (e.g. options) that a test server or proxy does not serve.
            wanted = ("spot",) if market == "spot" else _SWAP_MARKET_TYPES
            types = [t for t in listed["types"] if t in wanted]
            if types:
                options["fetchMarkets"] = {**listed, "types": types}
        config["options"] = options
        self.id = exchange_id
        self.market = market
        self.api_url = api_url
        self.exchange = exchange_class(config)
        self.last_status: int | None = None
        self._on_rest_response = self.exchange.on_rest_response
        # ccxt's hook for every HTTP answer: the status, which its error mapping may hide behind
        # the body's own error code, decides whether a failure is worth retrying.
        self.exchange.on_rest_response = self._record_status

    @classmethod
    def over(cls, exchange_id: str, market: str, connection: Connection) -> ExchangeClient:
        """A client reaching the exchange as a command's connection settings say."""
        return cls(
            exchange_id,
            market,
            api_url=connection.api_url,
            rate_limit_ms=connection.rate_limit_ms,
            timeout_ms=connection.timeout_ms,
        )

    def resolve_symbol(self, symbol: str) -> str:
        """The unified symbol of the wanted market; `BTC/USDT` on a swap means `BTC/USDT:USDT`."""
        markets: Mapping[str, Mapping[str, Any]] = self.call(self.exchange.load_markets)
        candidates = [symbol]
        if self.market == "swap" and ":" not in symbol and "/" in symbol:
            candidates.append(f"{symbol}:{symbol.split('/', 1)[1]}")
        for candidate in candidates:
            found = markets.get(candidate)
            if found is not None and found.get("type") == self.market:
                return candidate
        base_symbol = symbol.split(":", maxsplit=1)[0]
        similar = sorted(s for s in markets if s.split(":", maxsplit=1)[0] == base_symbol)
        hint = f" (the exchange lists {', '.join(similar)})" if similar else ""
        raise FetchError(f"{self.id}: no {self.market} market {symbol!r}{hint}")

    def check_timeframe(self, timeframe: str) -> None:
        supported = self.exchange.timeframes or {}
        if supported and timeframe not in supported:
            raise FetchError(
                f"{self.id} has no {timeframe} candles (it offers {', '.join(supported)})"
            )

    def ohlcv_page(
        self,
        symbol: str,
        timeframe: str,
        since: int,
        until_inclusive: int,
        limit: int,
        *,
        mark: bool = False,
    ) -> list[list[float]]:
        """A page of candles; `mark`: of the contract's mark price (binance: markPriceKlines)."""
        params: dict[str, Any] = {"until": until_inclusive}
        if mark:
            params["price"] = "mark"
        page: list[list[float]] = self.call(
            self.exchange.fetch_ohlcv, symbol, timeframe, since, limit, params
        )
        if not page:
            self._check_empty_body()
        return page

    def funding_page(
        self, symbol: str, since: int, until_inclusive: int, limit: int
    ) -> list[tuple[int, float]]:
        entries: list[Mapping[str, Any]] = self.call(
            self.exchange.fetch_funding_rate_history,
            symbol,
            since,
            limit,
            {"until": until_inclusive},
        )
        if not entries:
            self._check_empty_body()
        rows = []
        for entry in entries:
            rate = entry.get("fundingRate")
            rows.append((int(entry["timestamp"]), float("nan") if rate is None else float(rate)))
        return rows

    def _check_empty_body(self) -> None:
        # ccxt returns [] for a truncated, empty or HTML body too; only the text `[]` is a real end.
        body = self.exchange.last_http_response
        if not isinstance(body, str) or body.strip() != "[]":
            shown = repr(body[:120]) if isinstance(body, str) else "no body"
            raise TransientError(f"malformed empty page from {self.id}: {shown}")

    def _record_status(self, code: int, *args: Any) -> Any:
        self.last_status = code
        return self._on_rest_response(code, *args)

    def _forget_last_response(self) -> None:
        self.exchange.last_http_response = None
        self.exchange.last_response_headers = None
        self.last_status = None

    def call(self, method: Callable[..., T], *args: Any) -> T:
        self._forget_last_response()
        try:
            return method(*args)
        except ccxt.AuthenticationError as exc:
            raise FetchError(
                f"{self.id} refused the request (credentials or permissions): {redact(str(exc))}"
            ) from exc
        except ccxt.BadSymbol as exc:
            raise FetchError(f"{self.id}: unknown symbol: {redact(str(exc))}") from exc
        except ccxt.OperationFailed as exc:
            reason = unreachable_reason(exc, self._host(str(exc)))
            if reason is not None:
                raise UnreachableError(reason) from exc
            raise TransientError(self._describe_error(exc), self._retry_after()) from exc
        except ccxt.BaseError as exc:
            if self.last_status is not None and self.last_status >= 500:
                raise TransientError(self._describe_error(exc), self._retry_after()) from exc
            raise FetchError(
                f"{self.id} rejected the request: {self._describe_error(exc)}"
            ) from exc

    def _describe_error(self, exc: BaseException) -> str:
        status = f"HTTP {self.last_status} " if self.last_status is not None else ""
        return redact(f"{status}{type(exc).__name__}: {exc}")

    def _host(self, message: str) -> str:
        found = _URL.search(message)
        url = found.group(0) if found else (self.api_url or "")
        parts = urlsplit(url)
        if parts.hostname is None:
            return self.id
        return parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"

    def _retry_after(self) -> float | None:
        headers = self.exchange.last_response_headers
        if not headers:
            return None
        value = headers.get("Retry-After")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def describe(self) -> str:
        return redact(f"{self.id} {self.market} via {self.api_url or 'the default API'}")
