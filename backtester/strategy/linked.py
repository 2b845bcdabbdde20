"""Linked orders as a strategy writes them: a bracket (an entry whose fill releases its exits, the
exits one-cancels-other) and a plain one-cancels-other group, built as `SubmitOrder`s for one
`SubmitOrderList`."""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from backtester.domain.enums import BUY, LIMIT, SELL, STOP, TRAILING_STOP, Side
from backtester.domain.messages import SubmitOrder
from backtester.strategy.context import StrategyContext, StrategyError


class Bracket(NamedTuple):
    """The ids of a bracket's orders (None: that exit was not asked for)."""

    entry: int
    stop_loss: int | None
    take_profit: int | None
    trailing_stop: int | None


class Exits(NamedTuple):
    """A bracket's exits: absolute prices, percents of the entry's fill price, trailing offsets."""

    sl: float | None = None
    tp: float | None = None
    sl_pct: float | None = None
    tp_pct: float | None = None
    trail: float | None = None
    trail_pct: float | None = None

    def any(self) -> bool:
        return any(value is not None for value in self)


def bracket_orders(ctx: StrategyContext, entry: SubmitOrder, exits: Exits) -> list[SubmitOrder]:
    """The entry followed by its exits: reduce-only, sized by the entry's fills, one group."""
    _check(entry.side, exits)
    exit_side: Side = SELL if entry.side is BUY else BUY
    # A long's stop-loss is below the fill and its take-profit above; a short's the other way.
    down = -1.0 if entry.side is BUY else 1.0
    # Good till canceled: a position's exits last as long as it does.
    common: dict[str, object] = {
        "instrument": entry.instrument,
        "fraction": 1.0,
        "reduce_only": True,
        "parent_id": entry.order_id,
    }
    legs: list[SubmitOrder] = []
    if exits.sl is not None or exits.sl_pct is not None:
        legs.append(
            ctx.order(
                exit_side,
                order_type=STOP,
                stop_price=exits.sl,
                stop_offset_pct=None if exits.sl_pct is None else down * exits.sl_pct,
                tag="stop_loss",
                **common,  # type: ignore[arg-type]
            )
        )
    if exits.tp is not None or exits.tp_pct is not None:
        legs.append(
            ctx.order(
                exit_side,
                order_type=LIMIT,
                limit_price=exits.tp,
                limit_offset_pct=None if exits.tp_pct is None else -down * exits.tp_pct,
                tag="take_profit",
                **common,  # type: ignore[arg-type]
            )
        )
    if exits.trail is not None or exits.trail_pct is not None:
        legs.append(
            ctx.order(
                exit_side,
                order_type=TRAILING_STOP,
                trailing_offset=exits.trail if exits.trail is not None else exits.trail_pct,
                trailing_offset_type="price" if exits.trail is not None else "percent",
                tag="trailing_stop",
                **common,  # type: ignore[arg-type]
            )
        )
    group = legs[0].order_id
    legs = [msgspec.structs.replace(leg, oco_id=group) for leg in legs]
    return [entry, *legs]


def oco_orders(orders: tuple[SubmitOrder, ...]) -> list[SubmitOrder]:
    if len(orders) < 2:
        raise StrategyError("a one-cancels-other group needs at least two orders")
    group = orders[0].order_id
    return [msgspec.structs.replace(order, oco_id=group) for order in orders]


def bracket_ids(orders: list[SubmitOrder]) -> Bracket:
    tags = {order.tag: order.order_id for order in orders[1:]}
    return Bracket(
        orders[0].order_id,
        tags.get("stop_loss"),
        tags.get("take_profit"),
        tags.get("trailing_stop"),
    )


def _check(side: Side, exits: Exits) -> None:
    if exits.sl is not None and exits.sl_pct is not None:
        raise StrategyError("give sl or sl_pct, not both")
    if exits.tp is not None and exits.tp_pct is not None:
        raise StrategyError("give tp or tp_pct, not both")
    if exits.trail is not None and exits.trail_pct is not None:
        raise StrategyError("give trail or trail_pct, not both")
    for name in ("sl", "tp", "sl_pct", "tp_pct", "trail", "trail_pct"):
        value = getattr(exits, name)
        if value is not None and not value > 0:
            raise StrategyError(f"{name} must be > 0, got {value}")
    if exits.sl is not None and exits.tp is not None:
        long = side is BUY
        if (exits.sl >= exits.tp) if long else (exits.sl <= exits.tp):
            where = "below" if long else "above"
            raise StrategyError(
                f"a {'long' if long else 'short'} bracket needs its stop-loss {where} its "
                f"take-profit, got sl={exits.sl} tp={exits.tp}"
            )
