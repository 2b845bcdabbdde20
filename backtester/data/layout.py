"""Where a series lives: `<root>/<exchange>/<market>/<symbol>/<timeframe>/year=YYYY/`.

The symbol directory is the ccxt unified symbol with `/` and `:` turned into `-` (`BTC/USDT` ->
`BTC-USDT`, `BTC/USDT:USDT` -> `BTC-USDT-USDT`); the exact symbol is kept in the series manifest.
Funding rates use `funding` in place of the timeframe, mark-price candles `mark-<timeframe>`
(`mark-1h`): a contract's mark price has candles of its own, apart from its trades'.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import msgspec

from backtester.data.errors import DataError

MARKETS = ("spot", "swap")
FUNDING = "funding"
MARK_PREFIX = "mark-"
MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".lock"
DEFAULT_ROOT = "data"
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

Market = Literal["spot", "swap"]
# What a candle series prices: trades (the exchange's klines), or the contract's mark price.
Price = Literal["trade", "mark"]


class SeriesKey(msgspec.Struct, frozen=True):
    exchange: str
    market: str
    symbol: str
    timeframe: str
    price: Price = "trade"

    def __post_init__(self) -> None:
        if self.market not in MARKETS:
            raise DataError(f"market {self.market!r} is not one of {', '.join(MARKETS)}")
        if self.price == "mark" and (self.market != "swap" or self.timeframe == FUNDING):
            raise DataError("mark-price candles exist for contracts only (market swap)")
        for label, value in (("exchange", self.exchange), ("timeframe", self.timeframe)):
            if not _SAFE.match(value):
                raise DataError(f"{label} {value!r} may use only letters, digits, '.', '_' and '-'")
        symbol_dir(self.symbol)

    @property
    def kind(self) -> Literal["ohlcv", "funding"]:
        return "funding" if self.timeframe == FUNDING else "ohlcv"

    def relative_dir(self) -> Path:
        return Path(self.exchange, self.market, symbol_dir(self.symbol), self.series_dir_name)

    @property
    def series_dir_name(self) -> str:
        return MARK_PREFIX + self.timeframe if self.price == "mark" else self.timeframe

    def label(self) -> str:
        mark = " mark" if self.price == "mark" else ""
        return f"{self.exchange} {self.market} {self.symbol} {self.timeframe}{mark}"


def symbol_dir(symbol: str) -> str:
    name = symbol.replace("/", "-").replace(":", "-")
    if not _SAFE.match(name):
        raise DataError(f"symbol {symbol!r} cannot name a catalog directory")
    return name


def series_dir(root: Path, key: SeriesKey) -> Path:
    return root / key.relative_dir()


def year_of(ts_ms: int) -> int:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).year


def year_bounds(year: int) -> tuple[int, int]:
    """[start, end) of a UTC calendar year in epoch ms."""
    start = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def partition_name(year: int, sha256: str) -> str:
    """Content-addressed: a file is never rewritten in place, so a reader never sees half of one."""
    return f"year={year}/part-{sha256[:16]}.parquet"
