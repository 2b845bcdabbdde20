"""From config specs to the objects the engine runs with: fee and slippage models, the strategy class
and its typed parameters, instruments (a `from_catalog` one read from the catalog's markets
snapshot). Used by the composition root; every failure is a `ConfigError` naming the config key at
fault.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from backtester.config import (
    DEFAULT_CATALOG_ROOT,
    ConfigError,
    Fees,
    FixedBpsSlippageSpec,
    FixedFeeSpec,
    InstrumentSpec,
    MakerTakerFeeSpec,
    NoSlippageSpec,
    RunConfig,
    Slippage,
    StrategySpec,
    VolumeShareSlippageSpec,
)
from backtester.config_file import translate
from backtester.data.errors import CatalogError
from backtester.data.markets import MarketsSnapshot, market_of, read_snapshot
from backtester.domain.instrument import Instrument, InstrumentError, MarginMode, default_instrument
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


def instruments(
    cfg: RunConfig, resolved: Mapping[str, CatalogInstrument] | None = None
) -> dict[str, Instrument]:
    """One instrument per bar symbol: the configured one, else one with no rounding or limits.
    `resolved` are the config's catalog instruments already read (`catalog_instruments`), so a
    run uses exactly the instruments its manifest records; without it they are read here."""
    catalog = catalog_instruments(cfg) if resolved is None else resolved
    given = {
        spec.symbol: catalog[spec.symbol].instrument if spec.from_catalog else spec.instrument()
        for spec in cfg.instruments
    }
    return {
        s.symbol: given.get(s.symbol) or default_instrument(s.symbol)
        for s in cfg.data
        if s.series == "ohlcv"
    }


@dataclass(frozen=True)
class CatalogInstrument:
    """An instrument built from a markets snapshot, and the snapshot it was read from."""

    instrument: Instrument
    snapshot: MarketsSnapshot


def catalog_instruments(cfg: RunConfig) -> dict[str, CatalogInstrument]:
    """The config's `from_catalog` instruments by symbol, each snapshot read once."""
    snapshots: dict[tuple[str, str, str], MarketsSnapshot] = {}
    found = {}
    for index, spec in enumerate(cfg.instruments):
        if spec.from_catalog is None:
            continue
        where = (spec.root or DEFAULT_CATALOG_ROOT, spec.from_catalog, market_of(spec.symbol))
        if where not in snapshots:
            try:
                snapshots[where] = read_snapshot(*where)
            except CatalogError as exc:
                raise ConfigError(f"instruments[{index}].from_catalog", str(exc)) from None
        found[spec.symbol] = CatalogInstrument(
            _from_snapshot(spec, index, snapshots[where]), snapshots[where]
        )
    return found


def _from_snapshot(spec: InstrumentSpec, index: int, snapshot: MarketsSnapshot) -> Instrument:
    key = f"instruments[{index}]"
    if spec.symbol not in snapshot.markets:
        similar = snapshot.similar(spec.symbol)
        hint = f" (it lists {', '.join(similar)})" if similar else ""
        raise ConfigError(
            f"{key}.symbol",
            f"{spec.symbol!r} is not in the {snapshot.label}{hint}",
        )
    leverage = spec.leverage if spec.leverage is not None else 1.0
    try:
        listed = snapshot.instrument(spec.symbol)
    except InstrumentError as exc:
        raise ConfigError(key, f"cannot be built from the {snapshot.label}: {exc}") from None
    brackets = listed.margin_tiers
    if brackets and leverage > brackets[0].max_leverage:
        raise ConfigError(
            f"{key}.leverage",
            f"{leverage:g} is above the maximum {brackets[0].max_leverage:g} of "
            f"{spec.symbol}'s first margin bracket",
        )
    try:
        return snapshot.instrument(
            spec.symbol, leverage=leverage, margin_mode=spec.margin_mode or MarginMode.ISOLATED
        )
    except InstrumentError as exc:  # e.g. leverage on a spot market
        raise ConfigError(f"{key}.leverage", str(exc)) from None
