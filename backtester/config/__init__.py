"""Engine settings and run configs: frozen msgspec Structs, validated when decoded.

A run config is what a `configs/*.toml` file decodes into (`config_file.load_config`); its data
sources are in `config/sources.py`, its instruments in `config/instruments.py`. Model and data
source specs are tagged unions on `kind`; turning a spec into a model object is the composition root's
job (`backtester.engine.assembly`), so this module stays free of the execution package.
"""

from __future__ import annotations

import hashlib
import math
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec

from backtester.config.instruments import CATALOG_TRADING_FIELDS as CATALOG_TRADING_FIELDS
from backtester.config.instruments import DEFAULT_CATALOG_ROOT as DEFAULT_CATALOG_ROOT
from backtester.config.instruments import POSITIVE_INSTRUMENT_FIELDS, check_catalog_entry
from backtester.config.instruments import ExchangeId as ExchangeId
from backtester.config.instruments import InstrumentSpec as InstrumentSpec
from backtester.config.sources import CatalogSource as CatalogSource
from backtester.config.sources import DataSpec as DataSpec
from backtester.config.sources import FileSource as FileSource
from backtester.config.sources import Series as Series
from backtester.config.sources import Source as Source
from backtester.config.sources import check_catalog_source, check_file_timeframe
from backtester.config.sources import higher_key as higher_key
from backtester.config.sources import series_key as series_key


class IntrabarPath(StrEnum):
    """How price is assumed to move inside a bar when several resting orders could fill in it.

    `pessimistic` (the default, as backtesting.py and backtrader decide it): the extreme adverse to
    the position held comes first (low first when long, high first when flat or short), decided
    again after the fills at the open, so a stop-loss beats a take-profit in the same bar, on the
    entry's own bar too. `optimistic`: the favorable extreme first. `ohlc`: an up bar (close >=
    open) goes open -> low -> high -> close, a down bar open -> high -> low -> close.
    """

    OHLC = "ohlc"
    PESSIMISTIC = "pessimistic"
    OPTIMISTIC = "optimistic"


class FillConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    trade_on_close: bool = False
    intrabar: IntrabarPath = IntrabarPath.PESSIMISTIC


class RiskConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Limits beyond the instrument's own; `None` disables a limit. `on_limit`: an order that
    would take the position past a limit is denied ("deny") or cut down to what the limit leaves
    ("cap")."""

    max_position_quantity: float | None = None
    max_position_notional: float | None = None
    on_limit: Literal["deny", "cap"] = "deny"

    def __post_init__(self) -> None:
        # A zero or negative limit would deny every order: a silent run without trades.
        for name in ("max_position_quantity", "max_position_notional"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 (leave it out for no limit), got {value}")


class StatsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How Sharpe, Sortino and volatility are annualized: from `returns` "daily" (the equity at
    each trading day's last bar; the default) or "bar" (bar to bar), times the square root of
    `periods_per_year` of those returns; None infers it from the data's calendar (365 days on 24/7
    data, the observed sessions per year on weekday data)."""

    periods_per_year: Annotated[float, msgspec.Meta(gt=0)] | None = None
    returns: Literal["daily", "bar"] = "daily"


class ConfigError(ValueError):
    """A config that cannot run, named by file and dotted key path: one line for the user."""

    def __init__(self, key: str, message: str, *, source: str | None = None) -> None:
        self.key = key
        self.message = message
        self.source = source
        super().__init__(self._text())

    def _text(self) -> str:
        where = ": ".join(part for part in (self.source, self.key) if part)
        return f"{where}: {self.message}" if where else self.message

    def in_file(self, source: str) -> ConfigError:
        """The same error, attributed to the config file it came from."""
        return ConfigError(self.key, self.message, source=source)


NonNegative = Annotated[float, msgspec.Meta(ge=0)]
# A fee is a fraction of the notional: at 1 (100%) or more, or infinite, no order is affordable.
FeeRate = Annotated[float, msgspec.Meta(ge=0, lt=1)]

# --- fee and slippage model specs --------------------------------------------------------------


class FeeSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind"):
    pass


class FixedFeeSpec(FeeSpec, frozen=True, tag="fixed"):
    """One rate on the notional of every fill (0.001 = 0.1%)."""

    rate: FeeRate = 0.0


class MakerTakerFeeSpec(FeeSpec, frozen=True, tag="maker_taker"):
    maker: FeeRate = 0.0
    taker: FeeRate = 0.0


class SlippageSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind"):
    pass


class NoSlippageSpec(SlippageSpec, frozen=True, tag="none"):
    pass


class FixedBpsSlippageSpec(SlippageSpec, frozen=True, tag="fixed_bps"):
    # 10000 bps moves a sell's price to zero.
    bps: Annotated[float, msgspec.Meta(ge=0, lt=10_000)] = 0.0


class VolumeShareSlippageSpec(SlippageSpec, frozen=True, tag="volume_share"):
    volume_limit: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.025
    price_impact: NonNegative = 0.1

    def __post_init__(self) -> None:
        # The largest price move is price_impact x volume_limit^2: from 100% a sell's price is 0.
        if not self.price_impact * self.volume_limit**2 < 1:
            raise ValueError(
                f"price_impact {self.price_impact} x volume_limit {self.volume_limit}^2 must be "
                "below 1 (a move of 100%)"
            )


Fees = FixedFeeSpec | MakerTakerFeeSpec
Slippage = NoSlippageSpec | FixedBpsSlippageSpec | VolumeShareSlippageSpec

# union member types by config key, for "valid kinds" in error messages
KINDS: dict[str, tuple[type[msgspec.Struct], ...]] = {
    "fees": (FixedFeeSpec, MakerTakerFeeSpec),
    "slippage": (NoSlippageSpec, FixedBpsSlippageSpec, VolumeShareSlippageSpec),
    "data": (FileSource, CatalogSource),
}


def kinds_of(key: str) -> list[str]:
    """The valid `kind` tags of the union at config key `key` (`data[0]` counts as `data`)."""
    members = KINDS.get(key.split("[", 1)[0], ())
    return [str(m.__struct_config__.tag) for m in members]


# --- the run config ----------------------------------------------------------------------------


class StrategySpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`name` is a built-in strategy (`SmaCross`) or an import path (`package.module:Class`);
    `params` are checked against the strategy's own `Params` when the run is built."""

    name: str
    params: dict[str, Any] = {}


class AccountConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`cash`: a spot account (no leverage, no shorts); `margin`: a derivatives account (contracts at
    a leverage, shorts, funding, liquidation). Unset: margin when the instruments are contracts."""

    kind: Literal["cash", "margin"] | None = None


class RunConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything that decides a run's result, plus where to write it (`output_dir`)."""

    data: Annotated[list[Source], msgspec.Meta(min_length=1)]
    strategy: StrategySpec
    instruments: list[InstrumentSpec] = []
    cash: Annotated[float, msgspec.Meta(gt=0)] = 10_000.0
    account: AccountConfig = AccountConfig()
    seed: Annotated[int, msgspec.Meta(ge=0)] = 0
    fees: Fees = FixedFeeSpec()
    slippage: Slippage = NoSlippageSpec()
    fill: FillConfig = FillConfig()
    risk: RiskConfig = RiskConfig()
    stats: StatsConfig = StatsConfig()
    output_dir: str = "runs"

    def __post_init__(self) -> None:
        if not math.isfinite(self.cash):
            raise ValueError(f"cash: must be a finite amount, got {self.cash}")
        keys = [series_key(source) for source in self.data]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            symbol, series = repeated[0]
            what = "source" if series == "ohlcv" else f"{series} source"
            raise ValueError(f"data: symbol {symbol!r} has more than one {what}")
        symbols = [source.symbol for source in self.data if source.series == "ohlcv"]
        for i, source in enumerate(self.data):
            if isinstance(source, CatalogSource):
                check_catalog_source(source, i)
            else:
                check_file_timeframe(source, i)
            if source.series != "ohlcv" and source.symbol not in symbols:
                raise ValueError(
                    f"data[{i}].symbol: a {source.series} series for {source.symbol!r}, which has "
                    f"no bars (bar symbols: {', '.join(symbols) or 'none'})"
                )
        for i, instrument in enumerate(self.instruments):
            if instrument.symbol not in symbols:
                raise ValueError(
                    f"instruments[{i}].symbol: {instrument.symbol!r} has no data source "
                    f"(data symbols: {', '.join(symbols)})"
                )
            check_catalog_entry(instrument, i)
            # The domain type leaves these unchecked; a zero step would divide by zero mid-run.
            for name in POSITIVE_INSTRUMENT_FIELDS:
                value = getattr(instrument, name)
                if value is not None and not value > 0:
                    raise ValueError(f"instruments[{i}].{name}: must be > 0, got {value}")


# Where the run's files go does not change its result, so it stays out of the id: the same config
# written to two output directories is the same run.
_NOT_IDENTITY = ("output_dir",)


def plain_config(cfg: RunConfig) -> dict[str, Any]:
    """The decoded config as plain tables, defaults filled in, each instrument in its canonical
    form (`InstrumentSpec.canonical`)."""
    plain: dict[str, Any] = msgspec.to_builtins(cfg)
    plain["instruments"] = [spec.canonical() for spec in cfg.instruments]
    for source in plain["data"]:
        # A file source's timeframe is only a higher series' key: configs written before it
        # existed keep their ids.
        if source["kind"] == "file" and source["timeframe"] is None:
            del source["timeframe"]
    return plain


def canonical_json(cfg: RunConfig) -> bytes:
    """The decoded config as JSON with sorted keys, defaults filled in, output location left out."""
    plain = plain_config(cfg)
    for key in _NOT_IDENTITY:
        plain.pop(key)
    return msgspec.json.encode(plain, order="sorted")


def config_id(cfg: RunConfig) -> str:
    return hashlib.sha256(canonical_json(cfg)).hexdigest()
