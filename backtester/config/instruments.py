"""Instrument specs of a run config: an `[[instruments]]` entry, spelled out or taken from the
catalog's markets snapshot (`from_catalog`), checked where it is written."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from backtester.domain.instrument import Instrument, InstrumentKind, MarginMode, MarginTier

# An exchange id as ccxt spells it, which also names a catalog directory.
ExchangeId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]


class InstrumentSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """An `[[instruments]]` entry. Either the instrument's fields (`Instrument`; one left out takes
    the instrument's default), or `from_catalog = "<exchange>"`: the instrument as that exchange
    lists it in the catalog's markets snapshot (`python -m backtester data markets`) under `root`
    (default `data`), with only `leverage` and `margin_mode` set next to it. The engine's
    composition root (`engine.assembly`) turns a spec into an `Instrument`."""

    symbol: str
    from_catalog: ExchangeId | None = None
    root: str | None = None
    base: str | None = None
    quote: str | None = None
    kind: InstrumentKind | None = None
    settle: str | None = None
    contract_size: float | None = None
    linear: bool | None = None
    expiry: int | str | None = None
    leverage: float | None = None
    margin_mode: MarginMode | None = None
    margin_tiers: tuple[MarginTier, ...] | None = None
    liquidation_fee: float | None = None
    tick_size: float | None = None
    lot_size: float | None = None
    min_quantity: float | None = None
    max_quantity: float | None = None
    min_notional: float | None = None
    max_notional: float | None = None

    def __post_init__(self) -> None:
        if self.from_catalog is None:
            self.instrument()  # a spec that is no instrument fails where it is written

    def given(self) -> dict[str, Any]:
        """The `Instrument` fields this entry sets."""
        return {
            name: value for name in _INSTRUMENT_FIELDS if (value := getattr(self, name)) is not None
        }

    def instrument(self) -> Instrument:
        """The instrument of an entry that spells it out (not `from_catalog`)."""
        return Instrument(**self.given())

    def canonical(self) -> dict[str, Any]:
        """The entry as its config identity sees it: a spelled-out instrument with every field
        derived (so a config means the same whether it writes `base` or lets the symbol say
        it), a catalog one as where it comes from and how it is traded."""
        if self.from_catalog is None:
            plain: dict[str, Any] = msgspec.to_builtins(self.instrument())
            return plain
        return {
            "symbol": self.symbol,
            "from_catalog": self.from_catalog,
            "root": self.root if self.root is not None else DEFAULT_CATALOG_ROOT,
            "leverage": self.leverage if self.leverage is not None else 1.0,
            "margin_mode": str(self.margin_mode or MarginMode.ISOLATED),
        }


_INSTRUMENT_FIELDS = tuple(f.name for f in msgspec.structs.fields(Instrument))
# What a catalog entry may set besides its symbol: how it is traded, not what the exchange lists.
CATALOG_TRADING_FIELDS = ("leverage", "margin_mode")
DEFAULT_CATALOG_ROOT = "data"


def check_catalog_entry(spec: InstrumentSpec, index: int) -> None:
    if spec.from_catalog is None:
        if spec.root is not None:
            raise ValueError(
                f"instruments[{index}].root: names the catalog of a from_catalog instrument; "
                "this one sets no from_catalog"
            )
        return
    for name in spec.given():
        if name not in ("symbol", *CATALOG_TRADING_FIELDS):
            raise ValueError(
                f"instruments[{index}].{name}: comes from the {spec.from_catalog} markets "
                f"snapshot (from_catalog); only {' and '.join(CATALOG_TRADING_FIELDS)} may be "
                "set next to it"
            )
    if spec.leverage is not None and not spec.leverage > 0:
        raise ValueError(f"instruments[{index}].leverage: must be > 0, got {spec.leverage}")


POSITIVE_INSTRUMENT_FIELDS = (
    "tick_size",
    "lot_size",
    "min_quantity",
    "max_quantity",
    "min_notional",
    "max_notional",
)
