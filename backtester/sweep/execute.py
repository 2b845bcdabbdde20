"""The one seam between sweeps and the engine: a run config in, `RunOutcome(digest, stats)` out.

Everything the sweep package needs to know about run configs goes through this module, and all of it
is the main package's own logic: a point's parameters are set in the base config as `--set` sets a
key (`config_file.set_key_path`), the config decodes as a config file does
(`config_file.decode_config`), its strategy and parameters are checked as `python -m backtester run`
checks them (`assembly`), its data is fingerprinted as a run's manifest does (`runs.inputs`), its
run id and code identity are the manifest's (`derive_run_id`, `code_version`) and it runs through
`engine.run_config`. So a sweep row has the digest and the run id of a single run of that point.

Workers receive their inputs as files named by content hash, so a sweep's data sources are files
(`kind = "file"`); a catalog source is refused when the point is decoded. Every source travels,
in the config's order: the bars, for a perpetual its mark candles and funding rates, and the given
higher-timeframe series, each read as `run` reads it (`runs.inputs.read_file_source`), cut to its
window and checked as `run` checks it (`runs.inputs.check_higher`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import polars as pl

from backtester.config import ConfigError, FileSource, RunConfig, config_id, higher_key
from backtester.config_file import decode_config, set_key_path
from backtester.data.bars import RepairReport
from backtester.engine import assembly, run_config
from backtester.manifest import CodeVersion, DataInput, code_version, derive_run_id
from backtester.metrics.overfitting import period_returns
from backtester.runs.inputs import (
    SourceFrame,
    check_higher,
    load_source,
    read_file_source,
    window,
)

__all__ = [
    "RunOutcome",
    "RunSpec",
    "code_identity",
    "data_input",
    "decode_spec",
    "execute",
    "read_sources",
    "run_id",
    "set_key_path",
    "source_files",
]

RunSpec = RunConfig
_LABEL = "run config"


class RunOutcome(msgspec.Struct, frozen=True):
    """`returns`: the equity curve's period returns (`metrics.overfitting.period_returns`), which
    the sweep's overfitting statistics compare across points."""

    digest: str
    stats: dict[str, Any]
    returns: list[float] = []


def decode_spec(raw: dict[str, Any]) -> RunSpec:
    """A point's run config; a mistake is a `ConfigError` naming its key, as `run` reports it."""
    spec = decode_config(raw, _LABEL)
    source_files(spec)
    for i, instrument in enumerate(spec.instruments):
        if instrument.from_catalog is not None:
            raise ConfigError(
                f"instruments[{i}].from_catalog",
                "a sweep's workers have no catalog: write the instrument's fields out "
                "instead of from_catalog",
                source=_LABEL,
            )
    return spec


def source_files(spec: RunSpec) -> list[FileSource]:
    """The config's data sources, in order; each must be a file a worker can be sent."""
    files: list[FileSource] = []
    for i, source in enumerate(spec.data):
        if not isinstance(source, FileSource):
            kind = source.__struct_config__.tag
            raise ConfigError(
                f"data[{i}].kind",
                f'a sweep reads data files only (kind = "file"), not {kind!r}',
                source=_LABEL,
            )
        files.append(source)
    return files


def code_identity(spec: RunSpec) -> CodeVersion:
    """The code a point runs with; its strategy and parameters are checked first, as `run` does."""
    try:
        strategy = assembly.strategy_class(spec.strategy.name)
        assembly.strategy_params(strategy, spec.strategy)
    except ConfigError as exc:
        raise exc.in_file(_LABEL) from None
    return code_version(strategy)


def data_input(source: FileSource, index: int) -> DataInput:
    """The source's manifest entry (content hash, rows, time span), from loading it as `run` does."""
    _, entry = load_source(source, index)
    return entry


def run_id(spec: RunSpec, inputs: Mapping[FileSource, DataInput], code: CodeVersion) -> str:
    """The id `python -m backtester run` gives this config on the same data and code."""
    return derive_run_id(config_id(spec), [inputs[s] for s in source_files(spec)], code)


def read_sources(spec: RunSpec) -> list[SourceFrame]:
    """The config's data files, read from their paths, in the order `execute` takes them."""
    return [read_file_source(source) for source in source_files(spec)]


def execute(spec: RunSpec, data: Sequence[SourceFrame]) -> RunOutcome:
    """Run one config over its data: one file read whole per data source, in the config's order
    (`read_sources`, or a worker's cached copies). Each source's window is cut here and its series
    (bars, mark candles, funding rates) goes where `python -m backtester run` sends it."""
    sources = source_files(spec)
    if len(data) != len(sources):
        raise ValueError(f"{len(sources)} data source(s) but {len(data)} loaded file(s)")
    series: dict[str, dict[str, pl.DataFrame]] = {
        "ohlcv": {},
        "mark": {},
        "funding": {},
        "higher": {},
    }
    repairs: list[RepairReport] = []
    for source, loaded in zip(sources, data, strict=True):
        name = higher_key(source) if source.series == "higher" else source.symbol
        series[source.series][name] = window(loaded.frame, source)
        if loaded.repair is not None:
            repairs.append(loaded.repair)
    check_higher(spec, series["ohlcv"], series["higher"])
    result = run_config(
        spec,
        series["ohlcv"],
        repairs,
        marks=series["mark"],
        funding=series["funding"],
        timeframes=series["higher"],
    )
    equity = result.equity
    returns = period_returns(equity["ts"].dt.epoch("ns").to_numpy(), equity["equity"].to_numpy())
    return RunOutcome(digest=result.digest, stats=dict(result.stats), returns=returns.tolist())
