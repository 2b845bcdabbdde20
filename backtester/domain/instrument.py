"""Tradable instruments: what is traded (spot or a contract), on which grids, with which margin terms.

Symbols follow ccxt's unified form: `BTC/USDT` (spot), `BTC/USDT:USDT` (a perpetual settled in USDT),
`BTC/USDT:USDT-241227` (a future expiring on 2024-12-27), `BTC/USD:BTC` (an inverse contract settled
in the base coin). Base, quote, settle currency and kind are derived from the symbol unless given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

import msgspec

from backtester.domain import grid
from backtester.domain.times import utc_ms


class InstrumentKind(StrEnum):
    SPOT = "spot"
    PERPETUAL = "perpetual"
    FUTURE = "future"


class MarginMode(StrEnum):
    """`isolated`: each position has its own margin and is liquidated alone; `cross`: the account's
    equity backs every position, and the account is liquidated as a whole."""

    ISOLATED = "isolated"
    CROSS = "cross"


class InstrumentError(ValueError):
    """An instrument that cannot be traded as specified; the message names the field."""


class MarginTier(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One maintenance-margin bracket: a position whose notional is in [min_notional, max_notional)
    keeps `notional * maintenance_rate - maintenance_amount` as maintenance margin, and may be held at
    a leverage of at most `max_leverage` (ccxt's `fetch_leverage_tiers` shape; `maintenance_amount`
    is Binance's `cum`)."""

    max_notional: float
    maintenance_rate: float
    maintenance_amount: float = 0.0
    max_leverage: float = 125.0
    min_notional: float = 0.0


# Used where an instrument has no tiers: Binance USDⓈ-M's lowest bracket rate for major perpetuals.
DEFAULT_MAINTENANCE_RATE = 0.004
# Binance USDⓈ-M's published liquidation clearance fee for most symbols (a rate on the notional).
DEFAULT_LIQUIDATION_FEE = 0.0125


class Instrument(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A spot instrument or a contract. Every trading constraint is optional: `None` means "not
    enforced". With no tick or lot size, prices and quantities are used exactly as computed, so
    results can be compared with frameworks that do not round.

    Quantities of contracts count contracts; a contract is `contract_size` units of the base, so
    a fill's notional is `quantity * price * contract_size` (1 for spot). `leverage` and
    `margin_mode` apply to contracts on a margin account; `margin_tiers` (ascending) give the
    maintenance margin and each bracket's maximum leverage (none: one bracket at
    `DEFAULT_MAINTENANCE_RATE` with no leverage cap); `liquidation_fee` is charged on the notional
    of a liquidated position. `expiry` (epoch ms, or an ISO date/time in UTC) is a future's
    settlement time.
    """

    symbol: str
    base: str = ""
    quote: str = ""
    kind: InstrumentKind | None = None
    settle: str = ""
    contract_size: float = 1.0
    linear: bool = True
    expiry: int | str | None = None
    leverage: float = 1.0
    margin_mode: MarginMode = MarginMode.ISOLATED
    margin_tiers: tuple[MarginTier, ...] = ()
    liquidation_fee: float = DEFAULT_LIQUIDATION_FEE
    tick_size: float | None = None
    lot_size: float | None = None
    min_quantity: float | None = None
    max_quantity: float | None = None
    min_notional: float | None = None
    max_notional: float | None = None

    def __post_init__(self) -> None:
        parsed = parse_symbol(self.symbol)
        derived = {
            "base": self.base or parsed.base,
            "quote": self.quote or parsed.quote,
            "settle": self.settle or parsed.settle or self.quote or parsed.quote,
            "kind": _member(InstrumentKind, self.symbol, "kind", self.kind)
            if self.kind is not None
            else parsed.kind,
            "expiry": _epoch_ms(self.expiry) if self.expiry is not None else parsed.expiry,
            # A notebook passes strings ("isolated"): kept as given, `is` comparisons would fail.
            "margin_mode": _member(MarginMode, self.symbol, "margin_mode", self.margin_mode),
        }
        for name, value in derived.items():
            current = getattr(self, name)
            if current != value or type(current) is not type(value):
                msgspec.structs.force_setattr(self, name, value)
        self._check()

    def _check(self) -> None:
        for name in ("contract_size", "leverage"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InstrumentError(f"{self.symbol}: {name} must be > 0, got {value}")
        if not (math.isfinite(self.liquidation_fee) and 0 <= self.liquidation_fee < 1):
            raise InstrumentError(
                f"{self.symbol}: liquidation_fee must be in [0, 1), got {self.liquidation_fee}"
            )
        if self.kind is InstrumentKind.SPOT:
            if self.leverage != 1.0:
                raise InstrumentError(
                    f"{self.symbol}: leverage {self.leverage} on a spot instrument: leverage is for "
                    'contracts (kind = "perpetual" or "future", on a margin account)'
                )
            if self.contract_size != 1.0 or not self.linear:
                raise InstrumentError(
                    f"{self.symbol}: a spot instrument has no contract size or inverse settlement"
                )
        if self.kind is InstrumentKind.FUTURE and self.expiry is None:
            raise InstrumentError(
                f"{self.symbol}: a future needs an expiry (epoch ms or ISO time, or a ccxt "
                "symbol with a date suffix such as BTC/USDT:USDT-241227)"
            )
        previous = 0.0
        for k, tier in enumerate(self.margin_tiers):
            if not (tier.max_notional > tier.min_notional >= previous or k == 0):
                raise InstrumentError(
                    f"{self.symbol}: margin_tiers[{k}] must follow the previous bracket "
                    f"(min_notional {tier.min_notional}, max_notional {tier.max_notional})"
                )
            if not (0 <= tier.maintenance_rate < 1 and tier.max_leverage > 0):
                raise InstrumentError(
                    f"{self.symbol}: margin_tiers[{k}] needs 0 <= maintenance_rate < 1 and "
                    f"max_leverage > 0, got {tier.maintenance_rate} and {tier.max_leverage}"
                )
            previous = tier.max_notional
        if self.margin_tiers and self.leverage > self.margin_tiers[0].max_leverage:
            raise InstrumentError(
                f"{self.symbol}: leverage {self.leverage:g} is above the maximum "
                f"{self.margin_tiers[0].max_leverage:g} of its first margin bracket"
            )

    @classmethod
    def from_ccxt(
        cls,
        market: Mapping[str, Any],
        tiers: Sequence[Mapping[str, Any]] | None = None,
        *,
        leverage: float = 1.0,
        margin_mode: MarginMode = MarginMode.ISOLATED,
        precision_mode: Literal["tick_size", "decimal_places"] = "tick_size",
    ) -> Instrument:
        """The instrument of a ccxt market (a `load_markets()` entry) and its leverage tiers (the
        market's `fetch_leverage_tiers()` list). `precision_mode` is how the exchange states its
        precision (ccxt's `exchange.precisionMode`: tick sizes, as ccxt 4.5 reports Binance's, or
        decimal places). A limit of 0 or none is not enforced. The maintenance amount of a tier is
        Binance's `info.cum` where the exchange sends it, else the amount that keeps maintenance
        margin continuous across brackets (which is how Binance derives `cum`)."""
        symbol = str(market["symbol"])
        kind = _CCXT_KINDS.get(str(market.get("type")))
        if kind is None:
            raise InstrumentError(
                f"{symbol}: ccxt market type {market.get('type')!r} is not supported "
                f"(supported: {', '.join(_CCXT_KINDS)})"
            )
        contract = kind is not InstrumentKind.SPOT
        precision = market.get("precision") or {}
        limits = market.get("limits") or {}
        amount, cost = limits.get("amount") or {}, limits.get("cost") or {}
        info = market.get("info") or {}
        fee = _positive(info.get("liquidationFee")) if isinstance(info, Mapping) else None
        return cls(
            symbol=symbol,
            base=str(market.get("base") or ""),
            quote=str(market.get("quote") or ""),
            kind=kind,
            settle=str(market.get("settle") or "") if contract else "",
            contract_size=(_positive(market.get("contractSize")) or 1.0) if contract else 1.0,
            linear=_ccxt_linear(market) if contract else True,
            expiry=int(market["expiry"]) if kind is InstrumentKind.FUTURE else None,
            leverage=float(leverage),
            margin_mode=margin_mode,
            margin_tiers=_ccxt_tiers(symbol, tiers or ()),
            liquidation_fee=DEFAULT_LIQUIDATION_FEE if fee is None else fee,
            tick_size=_step(precision.get("price"), precision_mode),
            lot_size=_step(precision.get("amount"), precision_mode),
            min_quantity=_positive(amount.get("min")),
            max_quantity=_positive(amount.get("max")),
            min_notional=_positive(cost.get("min")),
            max_notional=_positive(cost.get("max")),
        )

    @property
    def is_contract(self) -> bool:
        return self.kind is not InstrumentKind.SPOT

    def round_price(self, price: float) -> float:
        """Nearest price on the tick grid (ties away from zero is irrelevant: floats never tie here)."""
        tick = self.tick_size
        if tick is None:
            return price
        return grid.nearest_on_grid(price, tick, grid.step_scale(tick))

    def round_quantity(self, quantity: float) -> float:
        """Nearest quantity on the lot grid (for remainders that are on it up to float error)."""
        lot = self.lot_size
        if lot is None:
            return quantity
        return grid.nearest_on_grid(quantity, lot, grid.step_scale(lot))

    def floor_quantity(self, quantity: float) -> float:
        """Largest quantity on the lot grid not above `quantity` (never rounds an order up)."""
        lot = self.lot_size
        if lot is None:
            return quantity
        return grid.floor_on_grid(quantity, lot, grid.step_scale(lot))

    def tier_for(self, notional: float) -> MarginTier:
        """The maintenance bracket of a position of `notional` (the last one beyond the table)."""
        tiers = self.margin_tiers
        if not tiers:
            return _UNTIERED
        for tier in tiers:
            if notional < tier.max_notional:
                return tier
        return tiers[-1]


E = TypeVar("E", InstrumentKind, MarginMode)


def _member(enum: type[E], symbol: str, name: str, value: str) -> E:
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum)
        raise InstrumentError(f"{symbol}: {name} must be one of {choices}, got {value!r}") from None


_UNTIERED = MarginTier(max_notional=math.inf, maintenance_rate=DEFAULT_MAINTENANCE_RATE)

# --- ccxt's market and leverage-tier shapes -----------------------------------------------------

_CCXT_KINDS = {
    "spot": InstrumentKind.SPOT,
    "swap": InstrumentKind.PERPETUAL,
    "future": InstrumentKind.FUTURE,
}


def _positive(value: Any) -> float | None:
    """A ccxt number (a float, or the exchange's decimal text in `info`); None unless > 0."""
    if value is None or value == "":
        return None
    number = float(value)
    return number if math.isfinite(number) and number > 0 else None


def _step(value: Any, mode: str) -> float | None:
    if mode == "decimal_places":
        return None if value is None else float(f"1e{-int(value)}")
    return _positive(value)


def _ccxt_linear(market: Mapping[str, Any]) -> bool:
    linear = market.get("linear")
    return not market.get("inverse") if linear is None else bool(linear)


def _ccxt_tiers(symbol: str, rows: Sequence[Mapping[str, Any]]) -> tuple[MarginTier, ...]:
    tiers: list[MarginTier] = []
    ordered = sorted(rows, key=lambda row: float(row.get("minNotional") or 0.0))
    for k, row in enumerate(ordered):
        try:
            floor = float(row.get("minNotional") or 0.0)
            cap = row.get("maxNotional")
            rate = float(row["maintenanceMarginRate"])
            cap_value = math.inf if cap is None else float(cap)
            leverage = float(row["maxLeverage"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InstrumentError(
                f"{symbol}: leverage tier {k + 1} is not ccxt's shape "
                f"(minNotional, maxNotional, maintenanceMarginRate, maxLeverage): {exc!r}"
            ) from None
        info = row.get("info")
        cum = info.get("cum") if isinstance(info, Mapping) else None
        if cum is not None:
            amount = float(cum)
        elif tiers:
            previous = tiers[-1]
            amount = previous.maintenance_amount + floor * (rate - previous.maintenance_rate)
        else:
            amount = 0.0
        tiers.append(MarginTier(cap_value, rate, amount, leverage, floor))
    return tuple(tiers)


class ParsedSymbol(msgspec.Struct, frozen=True):
    base: str
    quote: str
    settle: str
    kind: InstrumentKind
    expiry: int | None


def parse_symbol(symbol: str) -> ParsedSymbol:
    """Base, quote, settle currency, kind and expiry of a ccxt unified symbol (`BTC/USDT`,
    `BTC/USDT:USDT`, `BTC/USDT:USDT-241227`); a symbol without `/` has empty currencies."""
    pair, _, contract = symbol.partition(":")
    base, _, quote = pair.partition("/")
    if not contract:
        return ParsedSymbol(base, quote, quote, InstrumentKind.SPOT, None)
    settle, _, suffix = contract.partition("-")
    if not suffix:
        return ParsedSymbol(base, quote, settle, InstrumentKind.PERPETUAL, None)
    try:
        if len(suffix) != 6 or not suffix.isdigit():  # strptime would read "2412" as 24-1-2
            raise ValueError(suffix)
        day = datetime.strptime(suffix, "%y%m%d").replace(tzinfo=UTC)
    except ValueError:
        raise InstrumentError(
            f"{symbol}: expiry suffix {suffix!r} is not a YYMMDD date (ccxt: BTC/USDT:USDT-241227)"
        ) from None
    # Binance and most exchanges settle quarterly futures at 08:00 UTC on the expiry day.
    expiry = int(day.timestamp() * 1000) + 8 * 3_600_000
    return ParsedSymbol(base, quote, settle, InstrumentKind.FUTURE, expiry)


def _epoch_ms(value: int | str) -> int:
    if isinstance(value, int):
        return value
    try:
        return utc_ms(value)
    except ValueError as exc:
        raise InstrumentError(f"expiry: {exc}") from None


def snap_to_step(steps: int, step: float) -> float:
    """`steps * step` as the float nearest to the exact decimal product (0.1 * 3 -> 0.3, not
    0.30000000000000004): `grid.grid_point`."""
    return grid.grid_point(steps, step, grid.step_scale(step))


def default_instrument(symbol: str) -> Instrument:
    """An instrument with no grids or limits; its currencies and kind come from the symbol."""
    return Instrument(symbol=symbol)
