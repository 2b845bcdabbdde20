"""Interim run config for sweeps, until the run config of the `runs` work lands on main.

This mirrors the schema of `backtester.config.RunConfig` on that branch key for key (same TOML
tables, the same `kind` tags, the same defaults), so a sweep's `[base]` table is a run config that
`python -m backtester run` accepts, and `config_id` hashes the same canonical JSON. Only file data
sources exist here. When the run config is merged, this module is deleted and
`backtester.sweep.execute` imports `RunConfig` in its place; nothing else in the sweep package
imports this module.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import msgspec

from backtester.config import FillConfig, RiskConfig
from backtester.domain.instrument import Instrument

NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class FeeSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind"):
    pass


class FixedFeeSpec(FeeSpec, frozen=True, tag="fixed"):
    rate: NonNegative = 0.0


class MakerTakerFeeSpec(FeeSpec, frozen=True, tag="maker_taker"):
    maker: NonNegative = 0.0
    taker: NonNegative = 0.0


class SlippageSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind"):
    pass


class NoSlippageSpec(SlippageSpec, frozen=True, tag="none"):
    pass


class FixedBpsSlippageSpec(SlippageSpec, frozen=True, tag="fixed_bps"):
    bps: NonNegative = 0.0


class VolumeShareSlippageSpec(SlippageSpec, frozen=True, tag="volume_share"):
    volume_limit: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.025
    price_impact: NonNegative = 0.1


Fees = FixedFeeSpec | MakerTakerFeeSpec
Slippage = NoSlippageSpec | FixedBpsSlippageSpec | VolumeShareSlippageSpec


class FileSource(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="file"
):
    path: str
    symbol: str
    repair: bool = False


class StrategySpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    params: dict[str, Any] = {}


class RunConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    data: Annotated[list[FileSource], msgspec.Meta(min_length=1)]
    strategy: StrategySpec
    instruments: list[Instrument] = []
    cash: Annotated[float, msgspec.Meta(gt=0)] = 10_000.0
    seed: Annotated[int, msgspec.Meta(ge=0)] = 0
    fees: Fees = FixedFeeSpec()
    slippage: Slippage = NoSlippageSpec()
    fill: FillConfig = FillConfig()
    risk: RiskConfig = RiskConfig()
    output_dir: str = "runs"

    def __post_init__(self) -> None:
        symbols = [source.symbol for source in self.data]
        repeated = sorted({s for s in symbols if symbols.count(s) > 1})
        if repeated:
            raise ValueError(f"data: symbol {repeated[0]!r} has more than one source")
        for i, instrument in enumerate(self.instruments):
            if instrument.symbol not in symbols:
                raise ValueError(
                    f"instruments[{i}].symbol: {instrument.symbol!r} has no data source"
                )


def config_id(cfg: RunConfig) -> str:
    """sha256 of the canonical JSON: defaults filled in, keys sorted, output location left out."""
    plain = msgspec.to_builtins(cfg)
    plain.pop("output_dir")
    return hashlib.sha256(msgspec.json.encode(plain, order="sorted")).hexdigest()
