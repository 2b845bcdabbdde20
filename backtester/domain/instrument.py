"""Tradable instruments and the exact rounding of prices and quantities to their grids."""

from __future__ import annotations

import math
from decimal import Decimal

import msgspec


class Instrument(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A spot instrument. Every constraint is optional: `None` means "not enforced".

    With no tick or lot size, prices and quantities are used exactly as computed, so results can be
    compared with frameworks that do not round.
    """

    symbol: str
    base: str = "BASE"
    quote: str = "QUOTE"
    tick_size: float | None = None
    lot_size: float | None = None
    min_quantity: float | None = None
    max_quantity: float | None = None
    min_notional: float | None = None
    max_notional: float | None = None

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


def snap_to_step(steps: int, step: float) -> float:
    """`steps * step` as the float nearest to the exact decimal product (0.1 * 3 -> 0.3, not 0.30000000000000004)."""
    exponent = Decimal(repr(step)).as_tuple().exponent
    digits = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return round(steps * step, digits)


def default_instrument(symbol: str) -> Instrument:
    base, _, quote = symbol.partition("/")
    return Instrument(symbol=symbol, base=base or "BASE", quote=quote or "QUOTE")
