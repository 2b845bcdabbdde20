"""Strategies whose whole behaviour is one vectorized signal, which the engine can compile (adr/0011)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import msgspec
import numpy as np

from backtester.domain.enums import BUY, GTC, MARKET, SELL, Side
from backtester.domain.messages import Bar
from backtester.strategy.base import Strategy
from backtester.strategy.context import StrategyError

P = TypeVar("P", bound=msgspec.Struct)


class SignalPlan(NamedTuple):
    """What a `SignalStrategy` does, as data: the per-bar signal of the primary instrument and how
    much each entry and exit trades."""

    signal: np.ndarray  # int8: +1 enter, -1 exit, 0 nothing
    entry_fraction: float
    exit_fraction: float
    entry_tag: str
    exit_tag: str
    short: bool = False  # -1 also enters a short, +1 covers it (stop and reverse)


class SignalStrategy(Strategy[P]):
    """Market orders driven by `signals()`: on a +1 bar while flat it buys `entry_fraction` of the
    buying power (sized at the fill price, fees included); on a -1 bar while long it sells
    `exit_fraction` of the position. Orders fill at the next bar's open (or this bar's close with
    trade_on_close).

    With a parameter `short` set to true (a margin account and a contract), it also goes short:
    a -1 bar while flat sells `entry_fraction` of the buying power, and while long it closes the
    long and then enters the short (stop and reverse, when `exit_fraction` is 1); +1 mirrors it.

    Override `signals()` (computed once, vectorized, from the full columns: a value at bar i must
    depend on bars up to i only). Fractions that come from parameters are set in `on_start`
    before calling `super().on_start()`, which validates them.
    A subclass that also overrides `on_bar`, `on_fill`, `on_stop` or `active_bars` is an ordinary
    event-driven strategy; one that does not can run on the compiled order path, with results
    identical to the event-driven engine.
    """

    entry_fraction: float = 1.0
    exit_fraction: float = 1.0
    entry_tag: str = "entry"
    exit_tag: str = "exit"

    def signals(self) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define signals()")

    def on_start(self) -> None:
        symbol = self.ctx.primary
        bars = self.ctx.data[symbol].height
        raw = np.asarray(self.signals())
        if raw.shape != (bars,):
            raise StrategyError(
                f"{type(self).__name__}.signals() gave shape {raw.shape}, expected ({bars},): "
                f"one value per bar of {symbol}"
            )
        if raw.size and not _only_signs(raw):
            raise StrategyError(f"{type(self).__name__}.signals() values must be -1, 0 or +1")
        for name in ("entry_fraction", "exit_fraction"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise StrategyError(f"{type(self).__name__}.{name} must be in (0, 1], got {value}")
        self.signal = raw.astype(np.int8)
        # A list reads faster per bar than the array; built on the first bar, since the compiled
        # path never needs it.
        self._signal: list[int] | None = None
        self._positions = self.ctx.positions
        self._symbol = symbol
        self._short = type(self).shorts(self.params)
        self._market = self._market_order()

    def _market_order(self) -> Callable[[Side, float, str], object]:
        """How `on_bar` places a market order of a fraction with a tag: as `buy` and `sell` would
        (an order without flags or exits goes straight to the context, `Strategy._place`), with
        the calls between written out, unless a subclass has its own way of placing orders."""
        cls = type(self)
        if not (
            cls.buy is Strategy.buy
            and cls.sell is Strategy.sell
            and cls._place is Strategy._place
            and cls.order is Strategy.order
        ):
            buy, sell = self.buy, self.sell
            return lambda side, fraction, tag: (
                buy(fraction=fraction, tag=tag) if side is BUY else sell(fraction=fraction, tag=tag)
            )
        new_order, send = self.ctx.new_order, self.ctx.send
        return lambda side, fraction, tag: send(
            new_order(side, None, None, fraction, MARKET, None, None, GTC, tag)
        )

    def active_bars(self) -> np.ndarray:
        return np.flatnonzero(self.signal)

    def bar_signals(self) -> list[int]:
        """The signal as a list, one value per bar (made once, after `on_start`): `on_bar` does
        nothing on a bar whose value is 0, so the strategy module calls it only on the others
        (`StrategyModule`)."""
        signals = self._signal
        if signals is None:
            signals = self._signal = self.signal.tolist()
        return signals

    def on_bar(self, bar: Bar) -> None:
        signals = self._signal
        if signals is None:
            signals = self.bar_signals()
        signal = signals[bar.index]
        if signal == 0 or bar.instrument != self._symbol:
            return
        held = self._positions[self._symbol]
        market = self._market
        if signal > 0:
            if held == 0.0:
                market(BUY, self.entry_fraction, self.entry_tag)
            elif held < 0.0:
                market(BUY, self.exit_fraction, self.exit_tag)
                if self.exit_fraction == 1.0:
                    market(BUY, self.entry_fraction, self.entry_tag)
        elif held > 0.0:
            market(SELL, self.exit_fraction, self.exit_tag)
            if self._short and self.exit_fraction == 1.0:
                market(SELL, self.entry_fraction, self.entry_tag)
        elif held == 0.0 and self._short:
            market(SELL, self.entry_fraction, self.entry_tag)

    def signal_plan(self) -> SignalPlan | None:
        """The plan after `on_start`; None when a subclass overrides a hook, since its behaviour is
        then more than the plan says."""
        if not runs_on_plan_only(type(self)):
            return None
        return SignalPlan(
            self.signal,
            self.entry_fraction,
            self.exit_fraction,
            self.entry_tag,
            self.exit_tag,
            self._short,
        )


def _only_signs(values: np.ndarray) -> bool:
    if np.issubdtype(values.dtype, np.integer):
        return bool(values.min() >= -1 and values.max() <= 1)  # two passes, no temporaries
    return bool(np.isin(values, (-1, 0, 1)).all())


_PLAN_HOOKS = ("on_bar", "on_fill", "on_stop", "active_bars", "signal_plan")


def runs_on_plan_only(cls: type[Strategy[Any]]) -> bool:
    """Whether the class is a `SignalStrategy` whose behaviour is all in its plan (no hook of its own)."""
    return issubclass(cls, SignalStrategy) and all(
        getattr(cls, hook) is getattr(SignalStrategy, hook) for hook in _PLAN_HOOKS
    )


def plan_of(strategy: Strategy[Any]) -> SignalPlan | None:
    return strategy.signal_plan() if isinstance(strategy, SignalStrategy) else None
