"""Pre-trade rules as small pure functions: each returns a denial reason, or None to pass."""

from __future__ import annotations

import math

from backtester.accounting import limits
from backtester.domain.enums import BUY, GTD, SELL, Side
from backtester.domain.instrument import Instrument
from backtester.domain.messages import SubmitOrder


def check_shape(order: SubmitOrder) -> str | None:
    """What every order needs, whatever its type (the type checks its own prices:
    `backtester.orders`)."""
    if (order.quantity is None) == (order.fraction is None):
        return "exactly one of quantity and fraction must be set"
    if order.quantity is not None and not (math.isfinite(order.quantity) and order.quantity > 0):
        return f"quantity must be a positive number, got {order.quantity}"
    if order.fraction is not None and not (0.0 < order.fraction <= 1.0):
        return f"fraction must be in (0, 1], got {order.fraction}"
    if order.limit_price is not None or order.stop_price is not None:
        for name, price in (("limit", order.limit_price), ("stop", order.stop_price)):
            if price is not None and not (math.isfinite(price) and price > 0):
                return f"{name} price must be a positive number, got {price}"
    if order.stop_offset_pct is None and order.limit_offset_pct is None:
        return None  # most orders: nothing relative to a fill
    for name, pct in (("stop", order.stop_offset_pct), ("limit", order.limit_offset_pct)):
        if pct is None:
            continue
        if order.parent_id is None:
            return f"a {name} price relative to a fill needs a parent order"
        if not (math.isfinite(pct) and pct > -100.0):
            return f"{name} offset must be a percent above -100, got {pct}"
    return None


def check_time_in_force(order: SubmitOrder, now: int) -> str | None:
    if (order.time_in_force is GTD) != (order.expire_time is not None):
        return (
            "a GTD order needs an expire time"
            if order.time_in_force is GTD
            else f"an expire time needs time in force GTD, got {order.time_in_force.value}"
        )
    if order.expire_time is not None and order.expire_time <= now:
        return f"expire time {order.expire_time} is not after now ({now})"
    if order.post_only and not _rests(order):
        return f"post-only applies to orders that rest at a limit, not {order.order_type}"
    return None


def _rests(order: SubmitOrder) -> bool:
    return order.limit_price is not None or order.limit_offset_pct is not None


def check_post_only(order: SubmitOrder) -> str | None:
    """A post-only limit that would trade at once against the last price would take liquidity."""
    if not order.post_only or order.limit_price is None or order.stop_price is not None:
        return None
    marketable = (
        order.limit_price >= order.ref_price
        if order.side is BUY
        else order.limit_price <= order.ref_price
    )
    if marketable:
        return (
            f"post-only {order.side.value} limit {order.limit_price:.8g} would take liquidity "
            f"at the last price {order.ref_price:.8g}"
        )
    return None


def check_quantity_bounds(quantity: float, instrument: Instrument) -> str | None:
    if quantity <= 0:
        return f"quantity rounds to zero on lot size {instrument.lot_size}"
    if instrument.min_quantity is not None and quantity < instrument.min_quantity:
        return f"quantity {quantity} below minimum {instrument.min_quantity}"
    if instrument.max_quantity is not None and quantity > instrument.max_quantity:
        return f"quantity {quantity} above maximum {instrument.max_quantity}"
    return None


def check_notional(notional: float, instrument: Instrument) -> str | None:
    if instrument.min_notional is not None and notional < instrument.min_notional:
        return f"notional {notional:.8g} below minimum {instrument.min_notional}"
    if instrument.max_notional is not None and notional > instrument.max_notional:
        return f"notional {notional:.8g} above maximum {instrument.max_notional}"
    return None


def check_balance(
    side: Side,
    quantity: float,
    opening: float,
    cost: float,
    available: float,
    held: float,
    refusal: str | None,
    margin: bool,
) -> str | None:
    """The part of an order that opens exposure (`opening` of `quantity`) must be allowed by the
    account (`refusal`: why it may not, e.g. a short on spot) and paid for: its `cost` (margin and
    fee; spot: notional and fee) within what is `available`."""
    if opening <= 0.0:
        return None
    if refusal is not None:
        action = "sell" if side is SELL else "buy"
        return f"insufficient position: {action} {quantity:.8g}, held {held:.8g} ({refusal})"
    if cost > available:
        money = "margin" if margin else "cash"
        return f"insufficient {money}: needs {cost:.8g}, available {available:.8g}"
    return None


def check_bracket_leverage(notional: float, instrument: Instrument) -> str | None:
    """A position may not be held above its bracket's maximum leverage."""
    if not instrument.margin_tiers:
        return None
    tier = instrument.tier_for(notional)
    if instrument.leverage > tier.max_leverage:
        return (
            f"leverage {instrument.leverage:g} is above the maximum {tier.max_leverage:g} for a "
            f"position notional of {notional:.8g}"
        )
    return None


def position_room(
    held: float, price: float, max_quantity: float | None, max_notional: float | None
) -> float:
    """How much more the position (`held`, signed toward the order's side) may grow within the
    limits (`accounting.limits.position_room`)."""
    return limits.position_room(
        held,
        price,
        math.nan if max_quantity is None else max_quantity,
        math.nan if max_notional is None else max_notional,
    )


def check_max_position(
    projected: float, price: float, max_quantity: float | None, max_notional: float | None
) -> str | None:
    breach = limits.max_position_breach(
        projected,
        price,
        math.nan if max_quantity is None else max_quantity,
        math.nan if max_notional is None else max_notional,
    )
    if breach == limits.ABOVE_MAX_QUANTITY:
        return f"position would be {projected:.8g}, above max {max_quantity}"
    if breach == limits.ABOVE_MAX_NOTIONAL:
        return f"position notional would be {abs(projected) * price:.8g}, above max {max_notional}"
    return None
