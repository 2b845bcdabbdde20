"""A kernel that calls plain functions from another module, for test_backends."""

from __future__ import annotations

import numpy as np

from backtester.compiled.jit import kernel
from tests.unit.compiled.helper_arithmetic import booked_cash


@kernel("float64(float64[::1], float64, float64)")
def cash_after_buys(prices: np.ndarray, quantity: float, fee_rate: float) -> float:
    cash = 1_000_000.0
    for price in prices:
        cash = booked_cash(cash, quantity * price, fee_rate)
    return cash
