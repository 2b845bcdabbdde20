"""Plain arithmetic a test kernel calls, calling a second plain function in turn."""

from __future__ import annotations


def fee_of(notional: float, fee_rate: float) -> float:
    return notional * fee_rate


def booked_cash(cash: float, notional: float, fee_rate: float) -> float:
    return cash - (notional + fee_of(notional, fee_rate))
