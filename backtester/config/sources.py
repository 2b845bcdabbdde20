"""Data source specs of a run config: a file or a catalog series, and which series of which symbol
it holds (bars, mark candles, funding rates, given higher-timeframe bars)."""

from __future__ import annotations

from typing import Literal

import msgspec


class DataSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind"):
    pass


# What a data source holds for its symbol: its bars, its mark-price candles, its funding rates, or
# the bars of a higher timeframe the strategy reads (`Strategy.timeframes`), given instead of
# resampled from its bars.
Series = Literal["ohlcv", "mark", "funding", "higher"]


class FileSource(DataSpec, frozen=True, tag="file"):
    """A Parquet or CSV file; a relative path is relative to the working directory, like every
    path a command takes, so configs in a repository name data by their repository path.
    `start` (inclusive) and `end` (exclusive), epoch ms or ISO dates/times in UTC, cut the rows
    used. A `higher` series names its `timeframe` (`"1h"`): the strategy's `ctx.bars("1h")` of
    that symbol come from this file instead of being resampled from the bars."""

    path: str
    symbol: str
    series: Series = "ohlcv"
    timeframe: str | None = None
    start: str | int | None = None
    end: str | int | None = None
    repair: bool = False


class CatalogSource(DataSpec, frozen=True, tag="catalog"):
    """A series of the Parquet catalog; `start` (inclusive) and `end` (exclusive) are epoch ms or
    ISO dates/times in UTC. Bars and mark candles name their `timeframe`; funding rates have none
    (they are stored at the exchange's funding times). Mark and funding series are a contract's:
    `market = "swap"`. A `higher` series is the symbol's bars of a higher `timeframe`, which the
    strategy reads as `ctx.bars(timeframe)` instead of bars resampled from its base series."""

    exchange: str
    symbol: str
    timeframe: str = ""
    market: str = "spot"
    series: Series = "ohlcv"
    start: str | int | None = None
    end: str | int | None = None
    root: str = "data"
    repair: bool = False


Source = FileSource | CatalogSource


def series_key(source: Source) -> tuple[str, str]:
    """What a source is for the run: its symbol and its series, a higher one with its timeframe
    (`("BTC/USDT", "higher 1h")`). A config has at most one source of each."""
    if source.series == "higher":
        return source.symbol, f"higher {source.timeframe}"
    return source.symbol, source.series


def higher_key(source: Source) -> str:
    """The name the engine takes a higher series under: `"BTC/USDT@1h"`."""
    return f"{source.symbol}@{source.timeframe}"


def check_file_timeframe(source: FileSource, index: int) -> None:
    if source.series != "higher":
        if source.timeframe is not None:
            raise ValueError(
                f'data[{index}].timeframe: only a higher series (series = "higher") names a '
                "timeframe; the bars' own is read from the file"
            )
        return
    if source.timeframe is None:
        raise ValueError(
            f'data[{index}].timeframe: missing required key (the timeframe of a series = "higher"'
            ', e.g. "1h")'
        )


def check_catalog_source(source: CatalogSource, index: int) -> None:
    if source.series == "funding":
        if source.timeframe not in ("", "funding"):
            raise ValueError(
                f"data[{index}].timeframe: funding rates have no timeframe (leave it out)"
            )
    elif not source.timeframe:
        raise ValueError(f"data[{index}].timeframe: missing required key")
    if source.series in ("mark", "funding") and source.market != "swap":
        raise ValueError(
            f'data[{index}].market: {source.series} series are a contract\'s: market = "swap"'
        )
