"""Order types as objects: one module per type (validation, expected price, trigger along the
intrabar path, wake-up scan for signal mode), registered by name in one table."""

from backtester.orders.base import (
    END,
    LiveOrder,
    OrderKind,
    Path,
    Trigger,
    bar_path,
    first_reach,
    price_at,
    touch,
)
from backtester.orders.limit import Limit
from backtester.orders.market import Market
from backtester.orders.registry import (
    KINDS,
    UnknownOrderType,
    find,
    kind_of,
    known,
    names,
    register,
    unregister,
)
from backtester.orders.stop import MarketIfTouched, Stop
from backtester.orders.stop_limit import LimitIfTouched, StopLimit
from backtester.orders.trailing import TrailingStop, TrailingStopLimit

for _kind in (
    Market(),
    Limit(),
    Stop(),
    StopLimit(),
    MarketIfTouched(),
    LimitIfTouched(),
    TrailingStop(),
    TrailingStopLimit(),
):
    register(_kind)

__all__ = [
    "END",
    "KINDS",
    "Limit",
    "LimitIfTouched",
    "LiveOrder",
    "Market",
    "MarketIfTouched",
    "OrderKind",
    "Path",
    "Stop",
    "StopLimit",
    "TrailingStop",
    "TrailingStopLimit",
    "Trigger",
    "UnknownOrderType",
    "bar_path",
    "find",
    "first_reach",
    "kind_of",
    "known",
    "names",
    "price_at",
    "register",
    "touch",
    "unregister",
]
