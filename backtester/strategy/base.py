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
    OrderType,
    TimeInForce,
)
from backtester.domain.messages import Bar, OrderFilled, PositionLiquidated
from backtester.strategy.context import OpenOrder, StrategyContext


class NoParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


P = TypeVar("P", bound=msgspec.Struct)


class Strategy(Generic[P]):
    """Subclass, set `Params` to a frozen msgspec Struct of typed parameters, override the hooks.

    Hooks run inside the engine's drain loop: `on_start` once before the first bar (precompute vectorized
    indicators here), `on_bar` for every bar, `on_fill` after each fill has been booked,
    `on_liquidation` when the venue liquidates a position (its fill follows), `on_stop` after the
    last bar. Orders placed in `on_bar` are eligible from the next bar on (unless trade_on_close).

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
        instrument: str | None = None,
        tag: str = "",
    ) -> int:
        """Buy `quantity`, or a `fraction`: of a short position, that share of it; otherwise that
        share of the buying power (cash, or available margin at the instrument's leverage), sized at
        the fill price, fees included."""
        return self.ctx.submit(
            BUY,
            instrument=instrument,
            quantity=quantity,
            fraction=fraction,
            order_type=_order_type(limit, stop),
            limit_price=limit,
            stop_price=stop,
            time_in_force=time_in_force,
            tag=tag,
        )

    def sell(
        self,
        quantity: float | None = None,
        *,
        fraction: float | None = None,
        limit: float | None = None,
        stop: float | None = None,
        time_in_force: TimeInForce = GTC,
        instrument: str | None = None,
        tag: str = "",
    ) -> int:
        """Sell `quantity`, or a `fraction`: of a long position, that share of it (when the order
        fills); otherwise, on a margin account, that share of the buying power as a short. On a
        spot instrument with a cash account a sell never goes short."""
        return self.ctx.submit(
            SELL,
            instrument=instrument,
            quantity=quantity,
            fraction=fraction,
            order_type=_order_type(limit, stop),
            limit_price=limit,
            stop_price=stop,
            time_in_force=time_in_force,
            tag=tag,
        )

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


class ParamsError(ValueError):
    pass


def _order_type(limit: float | None, stop: float | None) -> OrderType:
    if limit is not None and stop is not None:
        return STOP_LIMIT
    if limit is not None:
        return LIMIT
    if stop is not None:
        return STOP
    return MARKET
