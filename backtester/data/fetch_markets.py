"""`data markets`: an exchange's markets and leverage tiers, fetched through ccxt into the catalog.

Markets come from `load_markets()` (public), the maintenance-margin brackets of contract markets
from `fetch_leverage_tiers()`, which Binance serves only to a signed request
(`/fapi/v1/leverageBracket`): its API key and secret are read from the environment
(`BACKTESTER_<EXCHANGE>_API_KEY`, `..._API_SECRET`, and `..._API_PASSWORD` where an exchange wants
one), never from the command line, which other users of the machine can read. They are given to
ccxt only for the tiers request, and masked in every message. A read-only key is enough.

Transient failures are retried like a candle fetch (`fetch.Retrier`). The snapshot is written by
`markets.write_snapshot` (atomic, hashed); `fetched_at` is the wall clock, which is why this module
is a `fetch*` module.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
import structlog

from backtester.data.connection import Connection
from backtester.data.errors import FetchError
from backtester.data.fetch import Retrier
from backtester.data.fetch_exchange import CCXT_VERSION, ExchangeClient
from backtester.data.layout import DEFAULT_ROOT
from backtester.data.markets import MarketsManifest, PrecisionMode, snapshot_dir, write_snapshot
from backtester.data.redaction import MASK
from backtester.data.series_manifest import SourceEntry

log = structlog.get_logger("backtester.data.markets")

# ccxt market types in each snapshot: `swap` holds every contract market ccxt lists.
_TYPES = {"spot": ("spot",), "swap": ("swap", "future")}
# ccxt's precisionMode constants (ccxt.base.decimal_to_precision).
_PRECISION_MODES: dict[int, PrecisionMode] = {4: "tick_size", 2: "decimal_places"}


class MarketsOptions(Connection, frozen=True, forbid_unknown_fields=True, kw_only=True):
    exchange: str
    market: Literal["spot", "swap"] = "swap"
    root: str = DEFAULT_ROOT
    tiers: bool = True


class ApiCredentials(msgspec.Struct, frozen=True):
    key: str
    secret: str
    password: str | None = None

    def __repr__(self) -> str:  # never shown, even in a traceback's locals
        return f"ApiCredentials(key={MASK}, secret={MASK})"

    def mask(self, text: str) -> str:
        for value in (self.key, self.secret, self.password):
            if value:
                text = text.replace(value, MASK)
        return text


class MarketsSummary(msgspec.Struct, frozen=True):
    directory: str
    manifest: MarketsManifest


def credential_names(exchange: str) -> tuple[str, str, str]:
    prefix = f"BACKTESTER_{exchange.upper()}_API"
    return f"{prefix}_KEY", f"{prefix}_SECRET", f"{prefix}_PASSWORD"


def credentials_from_env(
    exchange: str, environ: Mapping[str, str] = os.environ
) -> ApiCredentials | None:
    """The exchange's API credentials from the environment; None when no key is set."""
    key_name, secret_name, password_name = credential_names(exchange)
    key, secret = environ.get(key_name), environ.get(secret_name)
    if not key and not secret:
        return None
    if not key or not secret:
        missing = secret_name if key else key_name
        raise FetchError(f"{missing} is not set ({key_name} and {secret_name} go together)")
    return ApiCredentials(key, secret, environ.get(password_name) or None)


def fetch_markets(
    options: MarketsOptions,
    *,
    credentials: ApiCredentials | None = None,
    client: ExchangeClient | None = None,
    now_ms: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> MarketsSummary:
    """Fetch the markets (and for contracts their tiers) and store them as one snapshot."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    snapshot_dir(options.root, options.exchange, options.market)  # a bad market fails first
    client = client or ExchangeClient.over(options.exchange, options.market, options)
    retry = Retrier(options, sleep)

    def ask(method: Callable[..., Any], *args: Any) -> Any:
        try:
            return retry(lambda: client.call(method, *args))
        except FetchError as exc:
            text = str(exc) if credentials is None else credentials.mask(str(exc))
            raise FetchError(text) from None

    loaded: Mapping[str, Mapping[str, Any]] = ask(client.exchange.load_markets, True)
    markets = {
        symbol: dict(market)
        for symbol, market in sorted(loaded.items())
        if market.get("type") in _TYPES[options.market]
    }
    if not markets:
        raise FetchError(f"{options.exchange} lists no {options.market} markets")
    tiers = None
    if options.market == "swap" and options.tiers:
        tiers = _tiers(options, client, credentials, markets, ask)
    mode = _PRECISION_MODES.get(int(client.exchange.precisionMode))
    if mode is None:
        raise FetchError(
            f"{options.exchange} states precision in significant digits, which has no fixed "
            "tick or lot size"
        )
    manifest = write_snapshot(
        options.root,
        options.exchange,
        options.market,
        markets,
        tiers,
        fetched_at=_iso(now),
        source=SourceEntry(kind="ccxt", detail=client.describe()),
        ccxt_version=CCXT_VERSION,
        precision_mode=mode,
    )
    directory = snapshot_dir(options.root, options.exchange, options.market)
    log.info(
        "markets stored",
        exchange=options.exchange,
        market=options.market,
        markets=manifest.markets.entries,
        tiers=manifest.tiers.entries if manifest.tiers else 0,
        directory=str(directory),
    )
    return MarketsSummary(str(directory), manifest)


def _tiers(
    options: MarketsOptions,
    client: ExchangeClient,
    credentials: ApiCredentials | None,
    markets: Mapping[str, Any],
    ask: Callable[..., Any],
) -> dict[str, list[dict[str, Any]]]:
    exchange = client.exchange
    if not exchange.has.get("fetchLeverageTiers"):
        raise FetchError(
            f"{options.exchange} publishes no leverage tiers through ccxt: pass --no-tiers to "
            "store its markets without maintenance brackets"
        )
    if credentials is not None:
        exchange.apiKey, exchange.secret = credentials.key, credentials.secret
        if credentials.password is not None:
            exchange.password = credentials.password
    try:
        found: Mapping[str, Any] = ask(exchange.fetch_leverage_tiers)
    except FetchError as exc:
        if credentials is not None:
            raise
        key_name, secret_name, _ = credential_names(options.exchange)
        raise FetchError(
            f"{options.exchange}'s leverage tiers need an API key (read-only is enough): set "
            f"{key_name} and {secret_name}, or pass --no-tiers ({exc})"
        ) from None
    finally:
        exchange.apiKey = exchange.secret = exchange.password = ""
    return {
        symbol: [dict(tier) for tier in rows]
        for symbol, rows in sorted(found.items())
        if symbol in markets
    }


def _iso(ts_ms: int) -> str:
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
