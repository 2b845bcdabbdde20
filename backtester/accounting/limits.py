"""Position limits as plain functions of floats: the one definition the risk engine checks and the
compiled order path compiles into its kernel (as it does `accounting.arithmetic`). A limit that is
not set is NaN: no comparison with it is true, so it never denies."""

from __future__ import annotations

import math

WITHIN_LIMITS, ABOVE_MAX_QUANTITY, ABOVE_MAX_NOTIONAL = 0, 1, 2


def max_position_breach(
    projected: float, price: float, max_quantity: float, max_notional: float
) -> int:
    """Which limit a position of signed `projected` quantity at `price` would be above, if any:
    its quantity first, then its notional (`abs(projected) * price`)."""
    if abs(projected) > max_quantity:
        return ABOVE_MAX_QUANTITY
    if abs(projected) * price > max_notional:
        return ABOVE_MAX_NOTIONAL
    return WITHIN_LIMITS


def position_room(held: float, price: float, max_quantity: float, max_notional: float) -> float:
    """How much more a position (`held`, signed toward the order's side) may grow within the limits
    (an order that would cross one is cut to this when limits cap): `min(max quantity - held,
    max notional / price - held)`, never below 0."""
    room = math.inf
    if not math.isnan(max_quantity):
        room = max_quantity - held
    if not math.isnan(max_notional) and price > 0:
        other = max_notional / price - held
        room = other if other < room else room
    return 0.0 if room < 0.0 else room
