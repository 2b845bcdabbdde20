"""From config specs to the objects the engine runs with: fee and slippage models, the strategy class
and its typed parameters, instruments. Used by the composition root; every failure is a `ConfigError`
naming the config key at fault.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

import msgspec

from backtester.config import (
    ConfigError,
    Fees,
    FixedBpsSlippageSpec,
    FixedFeeSpec,
    MakerTakerFeeSpec,
    NoSlippageSpec,
    RunConfig,
    Slippage,
    StrategySpec,
    VolumeShareSlippageSpec,
)
from backtester.config_file import translate
from backtester.domain.instrument import Instrument, default_instrument
from backtester.domain.models import FeeModel, SlippageModel
from backtester.execution.fees import FixedRateFee, MakerTakerFee
from backtester.execution.slippage import FixedBpsSlippage, NoSlippage, VolumeShareSlippage
from backtester.strategies import BUILTIN
from backtester.strategy.base import Strategy


def fee_model(spec: Fees) -> FeeModel:
    match spec:
        case FixedFeeSpec(rate=rate):
            return FixedRateFee(rate=rate)
        case MakerTakerFeeSpec(maker=maker, taker=taker):
            return MakerTakerFee(maker=maker, taker=taker)


def slippage_model(spec: Slippage) -> SlippageModel:
    match spec:
        case NoSlippageSpec():
            return NoSlippage()
        case FixedBpsSlippageSpec(bps=bps):
            return FixedBpsSlippage(bps=bps)
        case VolumeShareSlippageSpec(volume_limit=limit, price_impact=impact):
            return VolumeShareSlippage(volume_limit=limit, price_impact=impact)


def strategy_class(name: str) -> type[Strategy[Any]]:
    """A built-in strategy by name, or any `Strategy` subclass by import path `package.module:Class`."""
    if ":" not in name:
        if name in BUILTIN:
            return BUILTIN[name]
        raise ConfigError(
            "strategy.name",
            f"unknown strategy {name!r} (built-in: {', '.join(sorted(BUILTIN))}; "
            "or an import path package.module:Class)",
        )
    module_name, _, attribute = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError("strategy.name", f"cannot import {module_name!r}: {exc}") from None
    found = getattr(module, attribute, None)
    if found is None:
        raise ConfigError("strategy.name", f"module {module_name!r} has no {attribute!r}")
    if not (isinstance(found, type) and issubclass(found, Strategy)):
        raise ConfigError("strategy.name", f"{name!r} is not a Strategy subclass")
    return found


def strategy_params(strategy: type[Strategy[Any]], spec: StrategySpec) -> msgspec.Struct:
    """The strategy's typed `Params`; a name it does not declare is reported by its key path."""
    declared = [field.name for field in msgspec.structs.fields(strategy.Params)]
    for name in spec.params:
        if name not in declared:
            close = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
            raise ConfigError(
                f"strategy.params.{name}",
                f"{strategy.__name__} does not declare this parameter "
                + (f"(did you mean {close[0]!r}? " if close else "(")
                + f"declared: {', '.join(declared) or 'none'})",
            )
    try:
        # Lenient like `Strategy.make_params`, so a notebook and a config accept the same values.
        return msgspec.convert(spec.params, type=strategy.Params, strict=False)
    except msgspec.ValidationError as exc:
        raise translate(str(exc), under="strategy.params", schema=strategy.Params) from None


def instruments(cfg: RunConfig) -> dict[str, Instrument]:
    """One instrument per data symbol: the configured spec, else one with no rounding or limits."""
    given = {instrument.symbol: instrument for instrument in cfg.instruments}
    return {
        s.symbol: given.get(s.symbol) or default_instrument(s.symbol)
        for s in cfg.data
        if s.series == "ohlcv"
    }
