"""A notebook run into the audit trail: `RunResult.save()` writes the run directory the `run` command
would have written for the same backtest, so `verify`, `compare` and `report` take it.

The backtest is described as the run config it is equivalent to. Bars that came as a DataFrame are
written once, as the validated frame the run used, to `<output_dir>/data/<sha256>.parquet`, and the
config names that file; bars from a file are named by their path, as a config names them.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import polars as pl

from backtester.config import (
    FileSource,
    FixedBpsSlippageSpec,
    FixedFeeSpec,
    MakerTakerFeeSpec,
    NoSlippageSpec,
    RunConfig,
    StrategySpec,
    VolumeShareSlippageSpec,
)
from backtester.config_file import decode_config
from backtester.domain.instrument import Instrument
from backtester.domain.models import FeeModel, SlippageModel
from backtester.engine.setup import EngineSetup
from backtester.execution.fees import FixedRateFee, MakerTakerFee
from backtester.execution.slippage import FixedBpsSlippage, NoSlippage, VolumeShareSlippage
from backtester.results import RunResult
from backtester.runs.artifacts import write_parquet
from backtester.runs.inputs import load_data
from backtester.runs.runner import recorded, write_run
from backtester.strategies import BUILTIN
from backtester.strategy.base import Strategy

# Model objects and the config specs that build them (`engine.assembly`): same fields, same names.
_SPECS: dict[type[msgspec.Struct], type[msgspec.Struct]] = {
    FixedRateFee: FixedFeeSpec,
    MakerTakerFee: MakerTakerFeeSpec,
    NoSlippage: NoSlippageSpec,
    FixedBpsSlippage: FixedBpsSlippageSpec,
    VolumeShareSlippage: VolumeShareSlippageSpec,
}


class SaveError(ValueError):
    """The run cannot be described as a run config (a custom fee model, say)."""


@dataclass(frozen=True)
class Origin:
    """What a notebook `Backtest.run` was made of, kept on its result for `save()`."""

    sources: dict[str, Any]  # symbol -> the path or DataFrame given
    bars: dict[str, pl.DataFrame]  # symbol -> the validated frame the run used
    # "mark" / "funding" -> symbol -> (the path or DataFrame given, the frame the run used)
    series: dict[str, dict[str, tuple[Any, pl.DataFrame]]]
    repair: bool
    instruments: list[Instrument]  # the ones given; the others are the defaults a config gets too
    strategy: type[Strategy[Any]]
    params: msgspec.Struct
    given_params: dict[str, Any]  # the parameters named in the call, as given
    fees: FeeModel
    slippage: SlippageModel
    setup: EngineSetup
    started_at: str
    finished_at: str
    # The higher-timeframe series given to the run, by name ("1h": of the first symbol, or
    # "ETH/USDT@1h"): (the path or DataFrame given, the frame the run used).
    higher: dict[str, tuple[Any, pl.DataFrame]] = field(default_factory=dict)


def save_result(result: RunResult, origin: Origin, output_dir: str | Path) -> Path:
    cfg = run_config_of(origin, output_dir)
    data = load_data(cfg)
    used = [(given, data.frames[s], frame, s) for s, (given, frame) in _bars_of(origin).items()]
    used += [
        (given, data.higher[_higher_name(name, origin)], frame, f"{name} series")
        for name, (given, frame) in origin.higher.items()
    ]
    for given, loaded, frame, what in used:
        if not loaded.equals(frame):
            # A file changed since the backtest read it: the directory would not hold its inputs.
            raise SaveError(
                f"cannot save: {given} changed since the backtest read it, so the bars of "
                f"{what} there are no longer the ones the run used"
            )
    if origin.strategy.__module__ == "__main__":
        warnings.warn(
            f"{origin.strategy.__name__} is defined in __main__ (a notebook cell or a script): "
            "report and compare read the saved run, but verify can replay it only once the "
            "strategy lives in an importable module",
            stacklevel=3,
        )
    run = recorded(cfg, origin.strategy, data, result)
    return write_run(run, origin.started_at, origin.finished_at).directory


def run_config_of(origin: Origin, output_dir: str | Path) -> RunConfig:
    """The run config that reproduces the notebook backtest, validated as a config file would be."""
    data = [
        _source(symbol, given, origin.bars[symbol], origin.repair, Path(output_dir))
        for symbol, given in origin.sources.items()
    ]
    for series, given_by_symbol in origin.series.items():
        for symbol, (given, frame) in given_by_symbol.items():
            entry = _source(symbol, given, frame, False, Path(output_dir))
            entry.pop("repair", None)
            data.append({**entry, "series": series})
    for name, (given, frame) in origin.higher.items():
        symbol, _, timeframe = _higher_name(name, origin).partition("@")
        entry = _source(symbol, given, frame, origin.repair, Path(output_dir))
        data.append({**entry, "series": "higher", "timeframe": timeframe})
    cfg = {
        "data": data,
        "instruments": [msgspec.to_builtins(i) for i in origin.instruments],
        "strategy": msgspec.to_builtins(
            StrategySpec(
                name=strategy_name(origin.strategy),
                params=_params(origin.params, origin.given_params),
            )
        ),
        "cash": origin.setup.initial_cash,
        "account": {"kind": origin.setup.account},
        "seed": origin.setup.seed,
        "fees": _spec(origin.fees, "fees"),
        "slippage": _spec(origin.slippage, "slippage"),
        "fill": msgspec.to_builtins(origin.setup.fill),
        "risk": msgspec.to_builtins(origin.setup.risk),
        "stats": msgspec.to_builtins(origin.setup.stats),
        "output_dir": str(output_dir),
    }
    return decode_config(cfg, "<notebook run>")


def _bars_of(origin: Origin) -> dict[str, tuple[Any, pl.DataFrame]]:
    return {symbol: (given, origin.bars[symbol]) for symbol, given in origin.sources.items()}


def _higher_name(name: str, origin: Origin) -> str:
    """A given series' name as a config's data names it: `SYMBOL@timeframe`."""
    return name if "@" in name else f"{next(iter(origin.sources))}@{name}"


def strategy_name(strategy: type[Strategy[Any]]) -> str:
    """How a config names the strategy: its built-in name, else `package.module:Class`."""
    if BUILTIN.get(strategy.__name__) is strategy:
        return strategy.__name__
    return f"{strategy.__module__}:{strategy.__qualname__}"


def _params(params: msgspec.Struct, given: dict[str, Any]) -> dict[str, Any]:
    """The parameters the run was given, as a config names them (the typed values): a config that
    leaves a parameter to its default and a notebook run that did the same are the same run."""
    plain: dict[str, Any] = msgspec.to_builtins(params)
    return {name: value for name, value in plain.items() if name in given}


def _spec(model: FeeModel | SlippageModel, key: str) -> dict[str, Any]:
    spec = _SPECS.get(type(model)) if isinstance(model, msgspec.Struct) else None
    if spec is None or not isinstance(model, msgspec.Struct):
        raise SaveError(
            f"cannot save: {key} model {type(model).__name__} has no run config form "
            f"(config kinds: {', '.join(str(s.__struct_config__.tag) for s in _SPECS.values())})"
        )
    plain: dict[str, Any] = msgspec.to_builtins(spec(**msgspec.structs.asdict(model)))
    return plain


def _source(
    symbol: str, given: Any, bars: pl.DataFrame, repair: bool, output_dir: Path
) -> dict[str, Any]:
    if isinstance(given, str | Path):
        return {"kind": "file", "path": str(given), "symbol": symbol, "repair": repair}
    path = store_bars(bars, output_dir / "data")
    # The stored frame is the validated one the run used: it needs no repair.
    plain: dict[str, Any] = msgspec.to_builtins(FileSource(path=str(path), symbol=symbol))
    return plain


def store_bars(bars: pl.DataFrame, directory: Path) -> Path:
    """The bars as Parquet named by their content hash: the same bars are stored once, in bytes that
    do not depend on the process. Time as a UTC datetime column, so reading it back needs no guess
    at the epoch unit."""
    frame = bars.with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC"))).rename(
        {"ts": "timestamp"}
    )
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".tmp", delete=False) as handle:
        staging = Path(handle.name)
    try:
        write_parquet(frame, staging)
        name = hashlib.sha256(staging.read_bytes()).hexdigest()[:32]
        final = directory / f"{name}.parquet"
        staging.replace(final)  # same name, same bytes: replacing an existing copy changes nothing
    finally:
        staging.unlink(missing_ok=True)
    return final
