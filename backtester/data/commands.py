"""`python -m backtester data ...`: fetch, import, list and validate the market-data catalog, and
store an exchange's markets (`data markets`).

The catalog root is `--root`, else the `BACKTESTER_DATA_ROOT` environment variable, else `data/` in
the working directory. `data fetch --config FILE.toml` reads the fetch options from a TOML file
(top-level keys or a `[fetch]` table, named like the long flags with `_`, e.g. `api_url`); flags
given on the command line win over the file.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import polars as pl

from backtester.data.atomic import check_writable
from backtester.data.audit import audit_series
from backtester.data.catalog import list_series
from backtester.data.connection import Connection
from backtester.data.errors import DataError
from backtester.data.fetch import FetchOptions, fetch
from backtester.data.fetch_markets import (
    MarketsOptions,
    credential_names,
    credentials_from_env,
    fetch_markets,
)
from backtester.data.importers import FORMATS, read_file
from backtester.data.layout import DEFAULT_ROOT, FUNDING, MARKETS, Price, SeriesKey
from backtester.data.series_manifest import SourceEntry
from backtester.data.store import write_series
from backtester.data.timeframes import format_ms, timeframe_ms
from backtester.data.validation import DEFAULT_SPIKE_THRESHOLD, check_spacing, describe

_ROOT_ENV = "BACKTESTER_DATA_ROOT"


def register(subparsers: Any) -> None:
    data = subparsers.add_parser("data", help="fetch, import, list and validate market data")
    commands = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    _add_fetch(commands)
    _add_markets(commands)
    _add_import(commands)
    listing = commands.add_parser("list", help="list the series in the catalog")
    _add_root(listing)
    listing.add_argument("--json", action="store_true", help="one JSON object per series")
    listing.set_defaults(handler=run_list)
    check = commands.add_parser("validate", help="re-check stored series against every rule")
    _add_root(check)
    check.add_argument("--exchange")
    check.add_argument("--market", choices=MARKETS)
    check.add_argument("--symbol")
    check.add_argument("--timeframe")
    check.add_argument("--spike-threshold", type=float, default=DEFAULT_SPIKE_THRESHOLD)
    check.set_defaults(handler=run_validate)


def _add_root(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    parser.add_argument(
        "--root",
        default=default,
        help=f"catalog directory (default: ${_ROOT_ENV}, else ./{DEFAULT_ROOT})",
    )


def _root(args: argparse.Namespace) -> Path:
    return Path(args.root or os.environ.get(_ROOT_ENV) or DEFAULT_ROOT)


def _add_fetch(commands: Any) -> None:
    parser = commands.add_parser(
        "fetch",
        help="download candles or funding rates through ccxt (resumes what is missing)",
        argument_default=None,
    )
    parser.add_argument(
        "--config", type=Path, help="TOML file with these options ([fetch] table, api_url = ...)"
    )
    parser.add_argument("--exchange", help="ccxt exchange id, e.g. binance")
    parser.add_argument("--symbol", help="ccxt symbol, e.g. BTC/USDT (BTC/USDT:USDT for a swap)")
    parser.add_argument("--timeframe", help="bar length, e.g. 1m (default 1m)")
    parser.add_argument("--since", help="first bar: ISO date/time in UTC, or epoch ms")
    parser.add_argument("--until", help="end, exclusive (default: now; open bars are never kept)")
    parser.add_argument("--market", choices=MARKETS)
    parser.add_argument(
        "--kind",
        choices=("ohlcv", "mark", "funding"),
        help="candles, a contract's mark-price candles, or funding rates",
    )
    _add_root(parser)
    _add_connection(parser)
    parser.add_argument("--page-limit", type=int, help="rows per request (default 1000)")
    parser.add_argument("--flush-rows", type=int, help="commit to the catalog every N rows")
    parser.add_argument("--spike-threshold", type=float, help="relative move reported as spike")
    parser.add_argument("--funding-interval", help="nominal funding interval (default 8h)")
    parser.add_argument(
        "--close-margin-ms", type=int, help="keep bars closed at least this long (default 5000)"
    )
    parser.add_argument(
        "--drop-invalid", action="store_true", default=None, help="drop bad rows, report them"
    )
    parser.set_defaults(handler=run_fetch)


def _add_connection(parser: argparse.ArgumentParser) -> None:
    # No defaults of their own: a flag left out takes the config file's value or Connection's.
    parser.add_argument("--api-url", help="base URL replacing the exchange's API host")
    parser.add_argument(
        "--rate-limit-ms",
        type=int,
        help="ccxt rateLimit: ms between requests of unit cost",
    )
    parser.add_argument("--timeout-ms", type=int, help="HTTP timeout per request (default 10000)")
    parser.add_argument("--max-retries", type=int, help="retries per request (default 8)")
    parser.add_argument("--retry-base-ms", type=int, help="first backoff delay, doubled each retry")


def _connection_flags(args: argparse.Namespace) -> dict[str, Any]:
    given = vars(args)
    return {
        name: given[name] for name in Connection.__struct_fields__ if given.get(name) is not None
    }


def fetch_options(args: argparse.Namespace) -> FetchOptions:
    values: dict[str, Any] = {}
    if args.config is not None:
        values.update(_read_config(args.config))
    fields = set(FetchOptions.__struct_fields__)
    values.update({k: v for k, v in vars(args).items() if k in fields and v is not None})
    if "root" not in values and os.environ.get(_ROOT_ENV):
        values["root"] = os.environ[_ROOT_ENV]
    try:
        return msgspec.convert(values, FetchOptions)
    except msgspec.ValidationError as exc:
        text = str(exc)
        if "missing required field" in text:
            field = text.split("`")[1] if "`" in text else text
            text = f"missing --{field.replace('_', '-')} (or `{field}` in the config file)"
        raise DataError(f"fetch options: {text}") from exc


def _read_config(path: Path) -> dict[str, Any]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{path}: config file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{path}: invalid TOML: {exc}") from exc
    table = document.get("fetch", document)
    if not isinstance(table, dict):
        raise DataError(f"{path}: [fetch] must be a table")
    return table


def run_fetch(args: argparse.Namespace) -> int:
    summary = fetch(fetch_options(args))
    span = (
        f"{format_ms(summary.first_ms)} .. {format_ms(summary.last_ms)}"
        if summary.first_ms is not None and summary.last_ms is not None
        else "empty"
    )
    print(
        f"{summary.series}: {summary.rows_received} rows received in {summary.requests} requests "
        f"({summary.retries} retries); stored {summary.rows_stored} rows, {span}, "
        f"{summary.gaps} gaps"
    )
    for start, end in summary.empty_ranges:
        print(
            f"  no bars at the exchange from {format_ms(start)} to {format_ms(end)} "
            "(asked again; recorded as a gap)"
        )
    return 0


def _add_markets(commands: Any) -> None:
    key_name, secret_name, _ = credential_names("<exchange>")
    parser = commands.add_parser(
        "markets",
        help="store an exchange's markets and leverage tiers through ccxt",
        description="Fetch an exchange's markets (tick and lot sizes, limits, contract terms) "
        "and, for contracts, their leverage tiers into the catalog, for configs that say "
        f'`from_catalog = "<exchange>"`. API credentials come from {key_name} and {secret_name} '
        "(upper-case exchange id), never from the command line.",
    )
    parser.add_argument("--exchange", required=True, help="ccxt exchange id, e.g. binance")
    parser.add_argument(
        "--market",
        choices=MARKETS,
        default="swap",
        help="spot markets, or every contract market (default: swap)",
    )
    _add_root(parser)
    _add_connection(parser)
    parser.add_argument(
        "--no-tiers",
        dest="tiers",
        action="store_false",
        help="store contract markets without leverage tiers (no API key needed)",
    )
    parser.set_defaults(handler=run_markets)


def run_markets(args: argparse.Namespace) -> int:
    options = MarketsOptions(
        exchange=args.exchange,
        market=args.market,
        root=str(_root(args)),
        tiers=args.tiers,
        **_connection_flags(args),
    )
    credentials = credentials_from_env(args.exchange) if args.market == "swap" else None
    summary = fetch_markets(options, credentials=credentials)
    manifest = summary.manifest
    tiers = (
        f"leverage tiers of {manifest.tiers.entries}"
        if manifest.tiers is not None
        else "no leverage tiers"
    )
    print(
        f"{manifest.exchange} {manifest.market}: {manifest.markets.entries} markets, {tiers}, "
        f"fetched {manifest.fetched_at}; stored in {summary.directory}"
    )
    return 0


def _add_import(commands: Any) -> None:
    parser = commands.add_parser(
        "import", help="validate a candle or funding file into the catalog"
    )
    parser.add_argument("file", type=Path)
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--symbol", required=True)
    parser.add_argument("--timeframe", help="bar length of the file (required for candles)")
    parser.add_argument("--market", choices=MARKETS, default="spot")
    parser.add_argument("--kind", choices=("ohlcv", "mark", "funding"), default="ohlcv")
    parser.add_argument("--format", choices=("auto", *FORMATS), default="auto")
    parser.add_argument("--funding-interval", default="8h")
    parser.add_argument("--spike-threshold", type=float, default=DEFAULT_SPIKE_THRESHOLD)
    parser.add_argument("--drop-invalid", action="store_true", help="drop bad rows, report them")
    _add_root(parser)
    parser.set_defaults(handler=run_import)


def run_import(args: argparse.Namespace) -> int:
    check_writable(_root(args), "catalog")
    if args.kind != "funding":
        if not args.timeframe:
            raise DataError("import of candles needs --timeframe")
        price: Price = "mark" if args.kind == "mark" else "trade"
        key = SeriesKey(args.exchange, args.market, args.symbol, args.timeframe, price)
        interval = timeframe_ms(args.timeframe)
    else:
        key = SeriesKey(args.exchange, args.market, args.symbol, FUNDING)
        interval = timeframe_ms(args.funding_interval)
    frame = read_file(args.file, key.kind, args.format)
    if key.price == "mark":
        # Exchanges publish no volume for mark prices; files leave it empty.
        frame = frame.with_columns(pl.col("volume").fill_null(0.0).fill_nan(0.0))
    if key.kind == "ohlcv":
        check_spacing(frame, interval, str(args.file))
    manifest, report = write_series(
        _root(args),
        key,
        frame,
        interval_ms=interval,
        source=SourceEntry(kind="import", detail=f"{args.format}: {args.file.name}"),
        spike_threshold=args.spike_threshold,
        drop_invalid=args.drop_invalid,
        label=f"{args.file.name} -> {key.label()}",
    )
    print("\n".join(describe(report)))
    print(f"{key.label()}: {manifest.rows} rows stored in {len(manifest.files)} file(s)")
    return 0


def run_list(args: argparse.Namespace) -> int:
    manifests = list_series(_root(args))
    if args.json:
        for m in manifests:
            sys.stdout.write(msgspec.json.encode(m).decode() + "\n")
        return 0
    if not manifests:
        print(f"no series under {_root(args)}")
        return 0
    header = ("exchange", "market", "symbol", "timeframe", "rows", "first", "last", "gaps", "files")
    rows = [header] + [
        (
            m.exchange,
            m.market,
            m.symbol,
            m.timeframe if m.price == "trade" else f"{m.timeframe} mark",
            str(m.rows),
            format_ms(m.first_ms) if m.first_ms is not None else "-",
            format_ms(m.last_ms) if m.last_ms is not None else "-",
            str(len(m.gaps)),
            str(len(m.files)),
        )
        for m in manifests
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def run_validate(args: argparse.Namespace) -> int:
    root = _root(args)
    chosen = [
        m
        for m in list_series(root)
        if (args.exchange is None or m.exchange == args.exchange)
        and (args.market is None or m.market == args.market)
        and (args.symbol is None or m.symbol == args.symbol)
        and (args.timeframe is None or m.timeframe == args.timeframe)
    ]
    if not chosen:
        raise DataError(f"no matching series under {root}")
    failed = 0
    for manifest in chosen:
        audit = audit_series(root, manifest, spike_threshold=args.spike_threshold)
        status = "ok" if audit.ok else "FAILED"
        print(f"{audit.label}: {status}")
        if audit.report is not None:
            print("\n".join("  " + line for line in describe(audit.report)))
        for error in audit.errors:
            print(f"  error: {error}")
        for leftover in audit.leftovers:
            print(f"  leftover of an interrupted write (removed by the next write): {leftover}")
        failed += not audit.ok
    print(f"{len(chosen)} series checked, {failed} failed")
    return 1 if failed else 0
