"""Bar fill rules as pure functions: when, along a bar's assumed price path, an order fills, and at what price.

A bar is read as a path through four points, open -> first extreme -> second extreme -> close, with price
moving linearly between them. An order's trigger is the first time on that path its condition holds:
  market      at the open;
  limit buy   price <= limit: at the open if it gaps through (fills at the open), else at the limit;
  stop buy    price >= stop:  at the open if it gaps through (fills at the open), else at the stop;
  stop-limit  once the stop triggers it is a limit from that moment on: it fills at once if the trigger
              price is within the limit, else when the rest of the path, or a later bar, reaches
              the limit (a triggered stop-limit stays a limit order; the venue remembers it).
Sells mirror buys. Times order the fills of several orders in one bar; ties keep submission order.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from backtester.domain.enums import (
    BUY,
    LIMIT,
    MAKER,
    MARKET,
    STOP,
    TAKER,
    Liquidity,
)
from backtester.domain.messages import Bar, SubmitOrder

Path = tuple[float, float, float, float]


class Trigger(NamedTuple):
    time: float
    price: float
    liquidity: Liquidity
    slips: bool


def bar_path(bar: Bar, low_first: bool) -> Path:
    if low_first:
        return (bar.open, bar.low, bar.high, bar.close)
    return (bar.open, bar.high, bar.low, bar.close)


def touch(path: Path, level: float, below: bool, start: float = 0.0) -> tuple[float, float] | None:
    """First (time, price) at or after `start` where price <= level (`below`) or >= level."""
    segment = min(int(start), 2)
    a, b = path[segment], path[segment + 1]
    here = a + (b - a) * (start - segment)
    if (here <= level) if below else (here >= level):
        return start, here
    for k in range(segment, 3):
        a, b = path[k], path[k + 1]
        if (b <= level) if below else (b >= level):
            # `a` is on the far side of the level here, so the crossing lies inside this segment.
            t = k + (a - level) / (a - b) if a != b else float(k)
            return max(t, start), level
    return None


def trigger(order: SubmitOrder, path: Path, armed: bool = False) -> Trigger | None:
    """`armed`: a stop-limit whose stop was reached on an earlier bar; it is a plain limit now."""
    buy = order.side is BUY
    kind = order.order_type
    if kind is MARKET:
        return Trigger(0.0, path[0], TAKER, True)
    if kind is LIMIT or armed:
        assert order.limit_price is not None
        hit = touch(path, order.limit_price, below=buy)
        return None if hit is None else Trigger(hit[0], hit[1], MAKER, False)
    assert order.stop_price is not None
    stop_hit = touch(path, order.stop_price, below=not buy)
    if stop_hit is None:
        return None
    if kind is STOP:
        return Trigger(stop_hit[0], stop_hit[1], TAKER, True)
    assert order.limit_price is not None
    limit_hit = touch(path, order.limit_price, below=buy, start=stop_hit[0])
    if limit_hit is None:
        return None
    at_trigger = limit_hit[0] == stop_hit[0]
    return Trigger(limit_hit[0], limit_hit[1], TAKER if at_trigger else MAKER, False)


def stop_reached(order: SubmitOrder, path: Path) -> bool:
    """Whether a stop-limit's stop is touched on this bar (it stays a limit from then on)."""
    assert order.stop_price is not None
    return touch(path, order.stop_price, below=order.side is not BUY) is not None


def first_reach(series: np.ndarray, level: float, below: bool, start: int) -> int:
    """First row at or after `start` where `series <= level` (`below`) or `>= level`; `len(series)`
    if none. Scans in growing chunks: a resting order usually triggers soon, sometimes never."""
    n = len(series)
    chunk = 64
    while start < n:
        window = series[start : start + chunk]
        found = np.flatnonzero(window <= level if below else window >= level)
        if len(found):
            return start + int(found[0])
        start += chunk
        chunk *= 4
    return n
