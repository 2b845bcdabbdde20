"""Enumerations shared by messages, configs and results."""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    MARKET_IF_TOUCHED = "market_if_touched"
    LIMIT_IF_TOUCHED = "limit_if_touched"
    TRAILING_STOP = "trailing_stop"
    TRAILING_STOP_LIMIT = "trailing_stop_limit"


class TimeInForce(StrEnum):
    """GTC: until filled or canceled; IOC: what its first eligible bar fills, the rest expires;
    FOK: all of it on its first eligible bar, or nothing; GTD: until `expire_time`; DAY: until the
    end of the UTC day it was accepted on."""

    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    GTD = "gtd"
    DAY = "day"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class OrderStatus(StrEnum):
    ACCEPTED = "accepted"
    DENIED = "denied"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = (OrderStatus.DENIED, OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED)


# Reading a member through its class (`Side.BUY`) runs a descriptor on Python 3.11; the per-order path
# reads these module constants instead.
BUY, SELL = Side.BUY, Side.SELL
MARKET, LIMIT, STOP, STOP_LIMIT = (
    OrderType.MARKET,
    OrderType.LIMIT,
    OrderType.STOP,
    OrderType.STOP_LIMIT,
)
TRAILING_STOP, TRAILING_STOP_LIMIT = OrderType.TRAILING_STOP, OrderType.TRAILING_STOP_LIMIT
GTC, IOC, FOK, GTD, DAY = (
    TimeInForce.GTC,
    TimeInForce.IOC,
    TimeInForce.FOK,
    TimeInForce.GTD,
    TimeInForce.DAY,
)
MAKER, TAKER = Liquidity.MAKER, Liquidity.TAKER
