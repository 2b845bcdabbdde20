"""Tradable instruments: what is traded (spot or a contract), on which grids, with which margin terms.

Symbols follow ccxt's unified form: `BTC/USDT` (spot), `BTC/USDT:USDT` (a perpetual settled in USDT),
`BTC/USDT:USDT-241227` (a future expiring on 2024-12-27), `BTC/USD:BTC` (an inverse contract settled
in the base coin). Base, quote, settle currency and kind are derived from the symbol unless given.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

import msgspec


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
            "kind": self.kind if self.kind is not None else parsed.kind,
            "expiry": _epoch_ms(self.expiry) if self.expiry is not None else parsed.expiry,
        }
        for name, value in derived.items():
            if getattr(self, name) != value:
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

    @property
    def is_contract(self) -> bool:
        return self.kind is not InstrumentKind.SPOT

    def round_price(self, price: float) -> float:
        """Nearest price on the tick grid (ties away from zero is irrelevant: floats never tie here)."""
        if self.tick_size is None:
            return price
        return snap_to_step(round(price / self.tick_size), self.tick_size)

    def round_quantity(self, quantity: float) -> float:
        """Nearest quantity on the lot grid (for remainders that are on it up to float error)."""
        if self.lot_size is None:
            return quantity
        return snap_to_step(round(quantity / self.lot_size), self.lot_size)

    def floor_quantity(self, quantity: float) -> float:
        """Largest quantity on the lot grid not above `quantity` (never rounds an order up)."""
        if self.lot_size is None:
            return quantity
        # A small tolerance keeps 0.3 / 0.1 = 2.9999999999999996 from losing a whole lot.
        steps = math.floor(quantity / self.lot_size + 1e-9)
        return snap_to_step(steps, self.lot_size)

    def tier_for(self, notional: float) -> MarginTier:
        """The maintenance bracket of a position of `notional` (the last one beyond the table)."""
        tiers = self.margin_tiers
        if not tiers:
            return _UNTIERED
        for tier in tiers:
            if notional < tier.max_notional:
                return tier
        return tiers[-1]


_UNTIERED = MarginTier(max_notional=math.inf, maintenance_rate=DEFAULT_MAINTENANCE_RATE)


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
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InstrumentError(
            f"expiry {value!r} is neither epoch milliseconds nor an ISO date/time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def snap_to_step(steps: int, step: float) -> float:
    """`steps * step` as the float nearest to the exact decimal product (0.1 * 3 -> 0.3, not 0.30000000000000004)."""
    exponent = Decimal(repr(step)).as_tuple().exponent
    digits = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return round(steps * step, digits)


def default_instrument(symbol: str) -> Instrument:
    """An instrument with no grids or limits; its currencies and kind come from the symbol."""
    return Instrument(symbol=symbol)
