"""The data a run config names: loaded into validated frames and fingerprinted for the manifest,
and its instruments, those read from the catalog's markets snapshots fingerprinted too."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import polars as pl

from backtester.config import (
    CatalogSource,
    ConfigError,
    FileSource,
    RunConfig,
    Source,
    higher_key,
)
from backtester.data.atomic import sha256_file
from backtester.data.bars import DataError, RepairReport, load_bars
from backtester.data.catalog import read_series
from backtester.data.columns import iso_ns
from backtester.data.layout import FUNDING
from backtester.data.market_series import load_funding, load_marks
from backtester.data.timeframes import parse_utc_ms
from backtester.domain.instrument import Instrument
from backtester.engine import assembly
from backtester.engine.timeframes import given_problem
from backtester.manifest import DataInput, InstrumentInput, Partition, instrument_sha256


@dataclass(frozen=True)
class LoadedData:
    """Bars by symbol, for perpetuals their mark candles and funding rates by symbol, and the
    given higher-timeframe series by `SYMBOL@timeframe`."""

    frames: dict[str, pl.DataFrame]
    repairs: list[RepairReport]
    inputs: list[DataInput]
    marks: dict[str, pl.DataFrame] = field(default_factory=dict)
    funding: dict[str, pl.DataFrame] = field(default_factory=dict)
    higher: dict[str, pl.DataFrame] = field(default_factory=dict)
    # The instrument of every bar symbol, and what the manifest records of those from the catalog.
    instruments: dict[str, Instrument] = field(default_factory=dict)
    instrument_inputs: list[InstrumentInput] = field(default_factory=list)

    def frame_of(self, source: Source) -> pl.DataFrame:
        """The frame the run uses of one of its config's sources."""
        if source.series == "higher":
            return self.higher[higher_key(source)]
        return {"ohlcv": self.frames, "mark": self.marks, "funding": self.funding}[source.series][
            source.symbol
        ]


def load_data(cfg: RunConfig) -> LoadedData:
    catalog = assembly.catalog_instruments(cfg)
    instruments = assembly.instruments(cfg, catalog)
    recorded = [
        InstrumentInput(
            symbol=symbol,
            snapshot=str(found.snapshot.directory),
            snapshot_sha256=found.snapshot.sha256,
            fetched_at=found.snapshot.manifest.fetched_at,
            sha256=instrument_sha256(found.instrument),
        )
        for symbol, found in catalog.items()
    ]
    by_series: dict[str, dict[str, pl.DataFrame]] = {
        "ohlcv": {},
        "mark": {},
        "funding": {},
        "higher": {},
    }
    repairs: list[RepairReport] = []
    inputs: list[DataInput] = []
    for index, source in enumerate(cfg.data):
        frame, entry = load_source(source, index)
        name = higher_key(source) if source.series == "higher" else source.symbol
        by_series[source.series][name] = frame
        inputs.append(entry)
        if entry.repair is not None:
            repairs.append(entry.repair)
    check_higher(cfg, by_series["ohlcv"], by_series["higher"])
    return LoadedData(
        by_series["ohlcv"],
        repairs,
        inputs,
        marks=by_series["mark"],
        funding=by_series["funding"],
        instruments=instruments,
        instrument_inputs=recorded,
        higher=by_series["higher"],
    )


def check_higher(
    cfg: RunConfig,
    bars: dict[str, pl.DataFrame],
    higher: dict[str, pl.DataFrame],
) -> None:
    """Each given higher-timeframe series is one the strategy declares and could stand for its
    symbol's bars resampled (`engine.timeframes.given_problem`); the error names the source."""
    if not higher:
        return
    declared = assembly.strategy_class(cfg.strategy.name).timeframes
    for index, source in enumerate(cfg.data):
        if source.series != "higher":
            continue
        assert source.timeframe is not None  # a higher source names it (RunConfig checks)
        if source.timeframe not in declared:
            raise ConfigError(
                f"data[{index}].timeframe",
                f"{cfg.strategy.name} declares no timeframe {source.timeframe!r} "
                f"(its timeframes: {', '.join(declared) or 'none'})",
            )
        problem = given_problem(
            higher[higher_key(source)], bars[source.symbol], source.timeframe, source.symbol
        )
        if problem is not None:
            where = source.path if isinstance(source, FileSource) else _catalog_label(source)
            raise DataError(f"{where} (data[{index}]): {problem}")


def load_source(
    source: Source, index: int, *, rehash: bool = False
) -> tuple[pl.DataFrame, DataInput]:
    """`rehash`: hash catalog partition files again instead of trusting the catalog's manifest."""
    match source:
        case FileSource():
            frame, entry = _load_file(source)
        case CatalogSource():
            frame, entry = _load_catalog(source, index, rehash)
    if source.series != "ohlcv":
        timeframe = source.timeframe if source.series == "higher" else None
        entry = msgspec.structs.replace(entry, series=source.series, timeframe=timeframe)
    return frame, entry


def file_sha256(source: FileSource) -> str | None:
    """The file's content hash, or None when it is missing; reads no more than the bytes."""
    path = Path(source.path)
    return sha256_file(path) if path.is_file() else None


def _load_file(source: FileSource) -> tuple[pl.DataFrame, DataInput]:
    sha256 = file_sha256(source)
    if sha256 is None:
        raise DataError(f"{source.path}: data file not found")
    read = read_file_source(source)
    frame = window(read.frame, source)
    return frame, _entry(source.symbol, "file", source.path, sha256, read.rows, frame, read.repair)


@dataclass(frozen=True)
class SourceFrame:
    """A file source read whole and validated as its series (bars, mark candles or funding
    rates), before its `start`/`end` window: what a sweep worker keeps in memory across runs."""

    frame: pl.DataFrame
    repair: RepairReport | None = None

    @property
    def rows(self) -> int:
        """The rows the file held (before a repair dropped duplicates)."""
        return self.repair.rows_in if self.repair is not None else self.frame.height


def read_file_source(
    source: FileSource, content: pl.DataFrame | str | Path | None = None
) -> SourceFrame:
    """The one place a file source is read: as bars (repaired on request; a higher series too),
    mark candles or funding rates. `content` is the file's content already read, or where the file is (a worker's
    cached copy); by default the source's own path."""
    where = source.path if content is None else content
    if source.series == "funding":
        return SourceFrame(load_funding(where, name=source.path))
    if source.series == "mark":
        return SourceFrame(load_marks(where, name=source.path).frame)
    bars = load_bars(where, repair=source.repair, name=source.path)
    return SourceFrame(bars.frame, bars.repair)


def window(frame: pl.DataFrame, source: FileSource) -> pl.DataFrame:
    """The rows in [start, end) of a file source; none left is an error."""
    if source.start is None and source.end is None:
        return frame
    ts = pl.col("ts")
    if source.start is not None:
        frame = frame.filter(ts >= _epoch_ms(source.start, "start") * 1_000_000)
    if source.end is not None:
        frame = frame.filter(ts < _epoch_ms(source.end, "end") * 1_000_000)
    if frame.height == 0:
        raise DataError(f"{source.path}: no rows between start={source.start} and end={source.end}")
    return frame


def _epoch_ms(value: str | int, key: str) -> int:
    if isinstance(value, int):
        return value
    try:
        return parse_utc_ms(value)
    except ValueError as exc:
        raise DataError(f"{key}: {exc}") from None


def _load_catalog(
    source: CatalogSource, index: int, rehash: bool
) -> tuple[pl.DataFrame, DataInput]:
    raw, partitions, where = read_catalog(source, index, rehash=rehash)
    label = f"{source.root}:{source.exchange}/{source.market}/{source.symbol}/{where}"
    repair: RepairReport | None = None
    if source.series == "funding":
        frame = load_funding(raw, name=label)
    elif source.series == "mark":
        frame = load_marks(raw, name=label).frame
    else:
        bars = load_bars(raw, repair=source.repair, name=label)
        frame, repair = bars.frame, bars.repair
    listing = msgspec.json.encode([[p.path, p.sha256, p.rows] for p in partitions])
    entry = _entry(
        source.symbol,
        "catalog",
        label,
        hashlib.sha256(listing).hexdigest(),
        raw.height,
        frame,
        repair,
    )
    return frame, msgspec.structs.replace(entry, partitions=partitions)


def _catalog_label(source: CatalogSource) -> str:
    return (
        f"catalog {source.root}: {source.exchange} {source.market} {source.symbol} "
        f"{source.timeframe}"
    )


def read_catalog(
    source: CatalogSource, index: int, *, rehash: bool = False
) -> tuple[pl.DataFrame, list[Partition], str]:
    """The one place a catalog source is read; the manifest records every partition file's hash.
    Also returns the series' directory name (`1h`, `mark-1h`, `funding`), which labels it."""
    funding = source.series == "funding"
    read = read_series(
        source.root,
        source.exchange,
        source.symbol,
        FUNDING if funding else source.timeframe,
        market=source.market,
        price="mark" if source.series == "mark" else "trade",
        start=source.start,
        end=source.end,
        verify=rehash,
    )
    partitions = [Partition(path=p.path, sha256=p.sha256, rows=p.rows) for p in read.partitions]
    return read.frame, partitions, read.key.series_dir_name


def _entry(
    symbol: str,
    kind: str,
    path: str,
    sha256: str,
    rows: int,
    frame: pl.DataFrame,
    repair: RepairReport | None,
) -> DataInput:
    ts = frame["ts"]
    return DataInput(
        symbol=symbol,
        source=kind,
        path=path,
        sha256=sha256,
        rows=rows,
        first_ts=iso_ns(int(ts[0])),
        last_ts=iso_ns(int(ts[-1])),
        repair=repair,
    )
