"""Trailing stops: the stop follows the best price since the order started trailing (the high-water
mark for a sell, the low-water mark for a buy) at a fixed distance: a price offset, a percent of
that mark, or a number of ticks (turned into a price offset on the instrument's grid). With an
activation price it starts trailing only once the price reaches it. Along a bar's path the mark
moves with the price, so a bar that rises and then falls back by the offset triggers it.

Trailing stop (market): fills at the stop level (or a worse open), taking liquidity. Trailing
stop-limit: once triggered it is a limit `limit_offset` beyond the level at that moment.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np

from backtester.domain.enums import BUY, MAKER, TAKER
from backtester.domain.instrument import Instrument
from backtester.domain.messages import SubmitOrder
from backtester.orders.base import (
    LiveOrder,
    OrderKind,
    Path,
    Trigger,
    first_reach,
    limit_trigger,
    price_at,
    touch,
)

OFFSET_TYPES = ("price", "percent", "ticks")


class TrailingStop(OrderKind):
    name = "trailing_stop"
    tracks_bars = True
    has_limit = False

    def validate(self, order: SubmitOrder) -> str | None:
        offset = order.trailing_offset
        if offset is None or not (math.isfinite(offset) and offset > 0):
            return f"{self.name} order needs a positive trailing offset, got {offset}"
        if order.trailing_offset_type not in OFFSET_TYPES:
            return (
                f"trailing offset type must be one of {', '.join(OFFSET_TYPES)}, "
                f"got {order.trailing_offset_type!r}"
            )
        if order.trailing_offset_type == "percent" and offset >= 100:
            return f"a trailing offset in percent must be below 100, got {offset}"
        if order.stop_price is not None:
            return f"{self.name} order takes no stop price (its stop trails the price)"
        if self.has_limit:
            limit_offset = order.limit_offset
            if limit_offset is None or not (math.isfinite(limit_offset) and limit_offset >= 0):
                return f"{self.name} order needs a limit offset >= 0, got {limit_offset}"
        elif order.limit_price is not None or order.limit_offset is not None:
            return f"{self.name} order takes no limit (a trailing stop-limit does)"
        activation = order.activation_price
        if activation is not None and not (math.isfinite(activation) and activation > 0):
            return f"activation price must be a positive number, got {activation}"
        return None

    def on_grids(self, order: SubmitOrder, instrument: Instrument) -> SubmitOrder:
        if order.trailing_offset_type != "ticks":
            return order
        assert order.trailing_offset is not None
        tick = instrument.tick_size if instrument.tick_size is not None else 1.0
        return msgspec.structs.replace(
            order, trailing_offset=order.trailing_offset * tick, trailing_offset_type="price"
        )

    def expected_price(self, order: SubmitOrder) -> float:
        return order.ref_price

    def start(self, live: LiveOrder, reference: float) -> None:
        if live.order.activation_price is None:
            live.activated = True
            live.extreme = reference

    # --- along the path --------------------------------------------------------------------------

    def trigger(self, live: LiveOrder, path: Path, start: float) -> Trigger | None:
        if live.armed:
            return limit_trigger(live, path, start, live.level)
        hit, _, _ = self._trail(live, path, start)
        if hit is None:
            return None
        time, price, level = hit
        if not self.has_limit:
            return Trigger(time, price, TAKER, True)
        limit = self._limit(live, level)
        buy = live.order.side is BUY
        limit_hit = touch(path, limit, below=buy, start=time)
        if limit_hit is None:
            return None
        return Trigger(limit_hit[0], limit_hit[1], TAKER if limit_hit[0] == time else MAKER, False)

    def settle(self, live: LiveOrder, path: Path, start: float) -> None:
        if live.armed:
            return
        hit, extreme, activated = self._trail(live, path, start)
        if hit is not None:
            # Only a stop-limit outlives its trigger: a limit from then on.
            live.armed = True
            live.level = self._limit(live, hit[2])
            return
        live.extreme, live.activated = extreme, activated

    def _limit(self, live: LiveOrder, level: float) -> float:
        offset = live.order.limit_offset or 0.0
        return level + offset if live.order.side is BUY else level - offset

    def _level(self, live: LiveOrder, extreme: float) -> float:
        order = live.order
        offset = order.trailing_offset
        assert offset is not None
        buy = order.side is BUY
        if order.trailing_offset_type == "percent":
            return extreme * _factor(offset, buy)
        return extreme + offset if buy else extreme - offset

    def _trail(
        self, live: LiveOrder, path: Path, start: float
    ) -> tuple[tuple[float, float, float] | None, float, bool]:
        """The trigger (time, price, level) from `start` on, if any, and the mark and activation
        at the close otherwise."""
        buy = live.order.side is BUY  # a buy trails the low (it protects a short)
        extreme, activated = live.extreme, live.activated
        time, here = start, price_at(path, start)
        if not activated:
            activation = live.order.activation_price
            assert activation is not None
            reached = touch(path, activation, below=buy, start=start)
            if reached is None:
                return None, extreme, False
            time, here = reached
            activated, extreme = True, here
        extreme = min(extreme, here) if buy else max(extreme, here)
        level = self._level(live, extreme)
        if (here >= level) if buy else (here <= level):
            return (time, here, level), extreme, True
        segment = min(int(time), 2)
        while segment < 3:
            end = float(segment + 1)
            b = path[segment + 1]
            if (b < here) if buy else (b > here):
                # Moving with the position: the mark follows, the stop cannot be reached.
                extreme = min(extreme, b) if buy else max(extreme, b)
                level = self._level(live, extreme)
            elif (b >= level) if buy else (b <= level):
                crossing = time + (end - time) * (here - level) / (here - b) if here != b else time
                return (crossing, level, level), extreme, True
            time, here, segment = end, b, segment + 1
        return None, extreme, True

    # --- signal mode -----------------------------------------------------------------------------

    def wake(self, live: LiveOrder, low: np.ndarray, high: np.ndarray, start: int) -> int:
        order = live.order
        buy = order.side is BUY
        if live.armed:
            return first_reach(low if buy else high, live.level, buy, start)
        if live.seen < 0:
            return start  # not yet through a bar: the venue sees where it starts
        extreme = live.extreme
        if not live.activated:
            assert order.activation_price is not None
            start = first_reach(low if buy else high, order.activation_price, buy, start)
            extreme = math.inf if buy else -math.inf
        n = len(low)
        chunk = 64
        offset = order.trailing_offset
        assert offset is not None
        percent = order.trailing_offset_type == "percent"
        factor = _factor(offset, buy)
        while start < n:
            lows, highs = low[start : start + chunk], high[start : start + chunk]
            if buy:
                marks = np.minimum(np.minimum.accumulate(lows), extreme)
                levels = marks * factor if percent else marks + offset
                found = np.flatnonzero(highs >= levels)
            else:
                marks = np.maximum(np.maximum.accumulate(highs), extreme)
                levels = marks * factor if percent else marks - offset
                found = np.flatnonzero(lows <= levels)
            if len(found):
                return start + int(found[0])
            extreme = float(marks[-1])
            start += chunk
            chunk *= 4
        return n

    def skip(
        self, live: LiveOrder, low: np.ndarray, high: np.ndarray, start: int, end: int
    ) -> None:
        if live.armed or start >= end:
            return
        buy = live.order.side is BUY
        series = low[start:end] if buy else high[start:end]
        if not live.activated:
            activation = live.order.activation_price
            assert activation is not None
            reached = np.flatnonzero(series <= activation if buy else series >= activation)
            if not len(reached):
                return
            series = series[int(reached[0]) :]
            live.activated = True
            live.extreme = float(series.min() if buy else series.max())
            return
        best = float(series.min() if buy else series.max())
        live.extreme = min(live.extreme, best) if buy else max(live.extreme, best)


class TrailingStopLimit(TrailingStop):
    name = "trailing_stop_limit"
    has_limit = True


def _factor(percent: float, buy: bool) -> float:
    return 1.0 + percent / 100.0 if buy else 1.0 - percent / 100.0
