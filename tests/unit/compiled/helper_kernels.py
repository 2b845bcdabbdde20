"""A kernel that calls plain functions from another module, for test_backends."""

from __future__ import annotations

import numpy as np

from backtester.compiled.hints import prefetch
from backtester.compiled.jit import kernel
from tests.unit.compiled.helper_arithmetic import booked_cash


@kernel("float64(float64[::1], float64, float64)")
def cash_after_buys(prices: np.ndarray, quantity: float, fee_rate: float) -> float:
    cash = 1_000_000.0
    for i in range(len(prices)):
        prefetch(prices, i + 8)  # a hint: the same cash with it or without
        cash = booked_cash(cash, quantity * prices[i], fee_rate)
    return cash
