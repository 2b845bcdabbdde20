"""Contracts of the pluggable venue models. Implementations live in `backtester.execution`.

A user plugs in a model by writing a class with these methods; no base class is needed.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from backtester.domain.enums import Liquidity, Side
from backtester.domain.messages import Bar


class FeeModel(Protocol):
    def fee(self, notional: float, liquidity: Liquidity) -> float:
        """Fee in quote currency for a fill of `notional` (price * quantity). Never negative.

        Orders sized from a budget take `fee(1.0)` as the rate for their first guess of the
        quantity, then step down until the booked cost fits: a fee that is not proportional to
        notional is sized conservatively."""
        ...


class SlippageModel(Protocol):
    def capacity(self, bar: Bar, already_filled: float) -> float:
        """How much more quantity this bar can fill, given what earlier fills in it took."""
        ...

    def fill_price(
        self, side: Side, price: float, quantity: float, bar: Bar, rng: np.random.Generator
    ) -> float:
        """The price a taker fill of `quantity` at reference `price` actually gets."""
        ...
