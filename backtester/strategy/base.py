"""The class users subclass to write a strategy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

import msgspec
import numpy as np

from backtester.domain.enums import (
    BUY,
    GTC,
    LIMIT,
    MARKET,
    SELL,
    STOP,
    STOP_LIMIT,
    TRAILING_STOP,
    TRAILING_STOP_LIMIT,
    OrderType,
    Side,
    TimeInForce,
)
from backtester.domain.messages import (
    Bar,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderModifyRejected,
    OrderReleased,
    PositionLiquidated,
    SubmitOrder,
)
from backtester.strategy.context import OpenOrder, StrategyContext, StrategyError
from backtester.strategy.linked import Bracket, Exits, bracket_ids, bracket_orders, oco_orders

OrderEvent = (
    OrderAccepted
    | OrderDenied
    | OrderCanceled
    | OrderExpired
    | OrderModified
    | OrderModifyRejected
    | OrderCancelRejected
    | OrderReleased
)


class NoParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


P = TypeVar("P", bound=msgspec.Struct)


class Strategy(Generic[P]):
    """Subclass, set `Params` to a frozen msgspec Struct of typed parameters, override the hooks.

    Hooks run inside the engine's drain loop: `on_start` once before the first bar (precompute vectorized
    indicators here), `on_bar` for every bar, `on_fill` after each fill has been booked, `on_order`
    for every other answer about an order (accepted, denied with its reason, canceled, expired,
    modified, modify or cancel rejected, released by its parent's fill), `on_liquidation` when the
    venue liquidates a position (its fill follows), `on_stop` after the last bar. Orders placed in
    `on_bar` are eligible from the next bar on (unless trade_on_close).

    A strategy that shorts says so with a parameter `short: bool` (see `shorts`), so a run that
    cannot short (a spot instrument on a cash account) is refused before it starts.
    """

    Params: ClassVar[type[msgspec.Struct]] = NoParams
    # Higher timeframes the strategy reads with `ctx.bars(timeframe)`, and how many closed bars of
    # each to keep in view: {"1h": 200, "1d": 30}.
    timeframes: ClassVar[Mapping[str, int]] = {}

    def __init__(self, ctx: StrategyContext, params: P) -> None:
        self.ctx = ctx
        self.params = params

    @classmethod
    def make_params(cls, values: dict[str, Any]) -> msgspec.Struct:
        """Typed parameters from plain values; unknown names and wrong types raise `ParamsError`."""
        try:
            return msgspec.convert(values, type=cls.Params, strict=False)
        except msgspec.ValidationError as exc:
            declared = ", ".join(f.name for f in msgspec.structs.fields(cls.Params)) or "none"
            raise ParamsError(
                f"{cls.__name__} parameters: {exc} (declared parameters: {declared})"
            ) from exc

    @classmethod
    def shorts(cls, params: msgspec.Struct) -> bool:
        """Whether the strategy, with these parameters, opens short positions: by convention, a
        parameter `short` set to true. Override where shorting is decided otherwise."""
        return bool(getattr(params, "short", False))

    # --- hooks ---------------------------------------------------------------------------------

    def on_start(self) -> None:
        pass

    def on_bar(self, bar: Bar) -> None:
        pass

    def active_bars(self) -> np.ndarray | None:
        """Rows of the primary instrument's bars where `on_bar` may act, ascending; on every other
        bar `on_bar` must do nothing. Declaring them lets the engine visit only those bars and the
        bars where a resting order can fill (signal mode), with results identical to visiting every
        bar. Called once, after `on_start`. None (the default): every bar matters."""
        return None

    def on_fill(self, fill: OrderFilled) -> None:
        pass

    def on_order(self, event: OrderEvent) -> None:
        pass

    def on_liquidation(self, event: PositionLiquidated) -> None:
        pass

    def on_stop(self) -> None:
        pass

    # --- conveniences over the context ---------------------------------------------------------

    @property
    def position(self) -> float:
        """The primary instrument's signed position: above zero long, below zero short."""
        return self.ctx.positions[self.ctx.primary]

    @property
    def cash(self) -> float:
        return self.ctx.cash

    @property
    def equity(self) -> float:
        return self.ctx.equity

    @property
    def open_orders(self) -> list[OpenOrder]:
        return list(self.ctx.open_orders.values())

    def buy(
        self,
        quantity: float | None = None,
        *,
        fraction: float | None = None,
        limit: float | None = None,
        stop: float | None = None,
        time_in_force: TimeInForce = GTC,
        expire_time: int | None = None,
        post_only: bool = False,
        reduce_only: bool = False,
        instrument: str | None = None,
        tag: str = "",
        sl: float | None = None,
        tp: float | None = None,
        sl_pct: float | None = None,
        tp_pct: float | None = None,
        trail: float | None = None,
        trail_pct: float | None = None,
    ) -> int:
        """Buy `quantity`, or a `fraction`: of a short position, that share of it; otherwise that
        share of the buying power (cash, or available margin at the instrument's leverage), sized at
        the fill price, fees included. `limit` and/or `stop` make it a limit, stop or stop-limit
        order. Exits that go live when it fills (a bracket, see `bracket`): `sl`/`tp` as prices,
        `sl_pct`/`tp_pct` in percent of the fill price, `trail`/`trail_pct` a trailing stop.
        Returns the order's id."""
        return self._place(
            BUY,
            quantity,
            fraction,
            limit,
            stop,
            time_in_force,
            expire_time,
            post_only,
            reduce_only,
            instrument,
            tag,
            (sl, tp, sl_pct, tp_pct, trail, trail_pct),
        )

    def sell(
        self,
        quantity: float | None = None,
        *,
        fraction: float | None = None,
        limit: float | None = None,
        stop: float | None = None,
        time_in_force: TimeInForce = GTC,
        expire_time: int | None = None,
        post_only: bool = False,
        reduce_only: bool = False,
        instrument: str | None = None,
        tag: str = "",
        sl: float | None = None,
        tp: float | None = None,
        sl_pct: float | None = None,
        tp_pct: float | None = None,
        trail: float | None = None,
        trail_pct: float | None = None,
    ) -> int:
        """Sell `quantity`, or a `fraction`: of a long position, that share of it (when the order
        fills); otherwise, on a margin account, that share of the buying power as a short. On a
        spot instrument with a cash account a sell never goes short. The other arguments as for
        `buy` (a short's stop-loss is above its fill, its take-profit below)."""
        return self._place(
            SELL,
            quantity,
            fraction,
            limit,
            stop,
            time_in_force,
            expire_time,
            post_only,
            reduce_only,
            instrument,
            tag,
            (sl, tp, sl_pct, tp_pct, trail, trail_pct),
        )

    def _place(
        self,
        side: Side,
        quantity: float | None,
        fraction: float | None,
        limit: float | None,
        stop: float | None,
        time_in_force: TimeInForce,
        expire_time: int | None,
        post_only: bool,
        reduce_only: bool,
        instrument: str | None,
        tag: str,
        exits: tuple[float | None, ...],
    ) -> int:
        # The exits come as a plain tuple: most orders have none, and need no Exits built. An
        # order without flags goes straight to the context (what `order` does, with nothing to
        # add), unless a subclass has its own `order`.
        if (
            expire_time is None
            and not post_only
            and not reduce_only
            and type(self).order is Strategy.order
        ):
            order = self.ctx.new_order(
                side,
                instrument,
                quantity,
                fraction,
                MARKET if limit is None and stop is None else _order_type(limit, stop),
                limit,
                stop,
                time_in_force,
                tag,
            )
        else:
            order = self.order(
                side,
                quantity,
                fraction=fraction,
                limit=limit,
                stop=stop,
                time_in_force=time_in_force,
                expire_time=expire_time,
                post_only=post_only,
                reduce_only=reduce_only,
                instrument=instrument,
                tag=tag,
            )
        if exits != _NO_EXITS:
            return self.ctx.submit_list(bracket_orders(self.ctx, order, Exits(*exits)))[0]
        self.ctx.send(order)
        return order.order_id

    def order(
        self,
        side: Side,
        quantity: float | None = None,
        *,
        fraction: float | None = None,
        limit: float | None = None,
        stop: float | None = None,
        time_in_force: TimeInForce = GTC,
        expire_time: int | None = None,
        post_only: bool = False,
        reduce_only: bool = False,
        instrument: str | None = None,
        tag: str = "",
        order_type: str | None = None,
        **options: Any,
    ) -> SubmitOrder:
        """An order, not sent yet: for `oco`, or for `ctx.submit_list`. Its type follows from
        `limit` and `stop` unless `order_type` names one (any registered type; `options` are its
        other `SubmitOrder` fields)."""
        # Only what differs from the order's defaults is passed on: each keyword is matched again
        # at every layer down to the order, and most orders set none of these.
        if expire_time is not None:
            options["expire_time"] = expire_time
        if post_only:
            options["post_only"] = post_only
        if reduce_only:
            options["reduce_only"] = reduce_only
        return self.ctx.order(
            side,
            instrument=instrument,
            quantity=quantity,
            fraction=fraction,
            order_type=order_type or _order_type(limit, stop),
            limit_price=limit,
            stop_price=stop,
            time_in_force=time_in_force,
            tag=tag,
            **options,
        )

    def bracket(
        self,
        side: Side,
        quantity: float | None = None,
        *,
        fraction: float | None = None,
        limit: float | None = None,
        stop: float | None = None,
        sl: float | None = None,
        tp: float | None = None,
        sl_pct: float | None = None,
        tp_pct: float | None = None,
        trail: float | None = None,
        trail_pct: float | None = None,
        time_in_force: TimeInForce = GTC,
        instrument: str | None = None,
        tag: str = "",
    ) -> Bracket:
        """An entry and its exits as one command (OTO + OCO): the stop-loss, take-profit and
        trailing stop go live when the entry fills (on the rest of that bar's path), sized by what
        it filled, reduce-only; when one of them fills, even partly, the others are canceled at
        once, and they are canceled when the position closes otherwise."""
        entry = self.order(
            side,
            quantity,
            fraction=fraction,
            limit=limit,
            stop=stop,
            time_in_force=time_in_force,
            instrument=instrument,
            tag=tag,
        )
        exits = Exits(sl, tp, sl_pct, tp_pct, trail, trail_pct)
        if not exits.any():
            raise StrategyError("a bracket needs at least one exit (sl, tp or a trailing stop)")
        orders = bracket_orders(self.ctx, entry, exits)
        self.ctx.submit_list(orders)
        return bracket_ids(orders)

    def oco(self, *orders: SubmitOrder) -> list[int]:
        """Send orders (from `order`) as one one-cancels-other group: when one fills, even partly,
        the others are canceled in the same step."""
        return self.ctx.submit_list(oco_orders(orders))

    def trailing_stop(
        self,
        side: Side,
        quantity: float | None = None,
        *,
        fraction: float | None = None,
        offset: float,
        unit: str = "price",
        activation: float | None = None,
        limit_offset: float | None = None,
        reduce_only: bool = False,
        time_in_force: TimeInForce = GTC,
        instrument: str | None = None,
        tag: str = "trailing_stop",
    ) -> int:
        """A stop that trails the best price since it started (the high for a sell, the low for a
        buy) by `offset` in `unit` ("price", "percent" or "ticks"), from `activation` on if given;
        with `limit_offset` a trailing stop-limit."""
        order = self.order(
            side,
            quantity,
            fraction=fraction,
            time_in_force=time_in_force,
            reduce_only=reduce_only,
            instrument=instrument,
            tag=tag,
            order_type=TRAILING_STOP if limit_offset is None else TRAILING_STOP_LIMIT,
            trailing_offset=offset,
            trailing_offset_type=unit,
            activation_price=activation,
            limit_offset=limit_offset,
        )
        self.ctx.publish(order)
        return order.order_id

    def close(self, instrument: str | None = None, tag: str = "close") -> int | None:
        """Close the whole position at market, long or short, if there is one."""
        held = self.ctx.position(instrument)
        if held > 0:
            return self.sell(fraction=1.0, instrument=instrument, tag=tag)
        if held < 0:
            return self.buy(fraction=1.0, instrument=instrument, tag=tag)
        return None

    def cancel(self, order_id: int) -> None:
        self.ctx.cancel(order_id)

    def modify(
        self,
        order_id: int,
        *,
        price: float | None = None,
        quantity: float | None = None,
        trigger: float | None = None,
    ) -> None:
        """Amend an open order: its limit `price`, total `quantity` or stop `trigger`. The answer
        is `OrderModified` or `OrderModifyRejected(reason)` in `on_order`."""
        self.ctx.modify(order_id, quantity=quantity, limit_price=price, stop_price=trigger)


class ParamsError(ValueError):
    pass


_NO_EXITS = Exits()


def _order_type(limit: float | None, stop: float | None) -> OrderType:
    """The built-in type that `limit` and `stop` prices make."""
    if limit is not None and stop is not None:
        return STOP_LIMIT
    if limit is not None:
        return LIMIT
    if stop is not None:
        return STOP
    return MARKET
