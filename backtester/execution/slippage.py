"""Slippage models for taker fills. Any object with `capacity` and `fill_price` (see
`domain.models.SlippageModel`) plugs in; limit (maker) fills never slip."""

from __future__ import annotations

import math

import msgspec
import numpy as np

from backtester.domain.enums import Side
from backtester.domain.messages import Bar
from backtester.domain.volume_share import volume_capacity, volume_share_price


class NoSlippage(msgspec.Struct, frozen=True):
    def capacity(self, bar: Bar, already_filled: float) -> float:
        return math.inf

    def fill_price(
        self, side: Side, price: float, quantity: float, bar: Bar, rng: np.random.Generator
    ) -> float:
        return price


class FixedBpsSlippage(msgspec.Struct, frozen=True):
    """Every taker fill pays `bps` basis points worse than the reference price."""

    bps: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.bps < 10_000:
            raise ValueError(f"slippage bps must be >= 0 and below 10000, got {self.bps}")

    def capacity(self, bar: Bar, already_filled: float) -> float:
        return math.inf

    def fill_price(
        self, side: Side, price: float, quantity: float, bar: Bar, rng: np.random.Generator
    ) -> float:
        return price * (1.0 + side.sign * self.bps * 1e-4)


class VolumeShareSlippage(msgspec.Struct, frozen=True):
    """A bar fills at most `volume_limit` of its volume (the rest waits for later bars: partial fills),
    and the price moves against the taker by `price_impact * (quantity / volume) ** 2`, as in zipline."""

    volume_limit: float = 0.025
    price_impact: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 < self.volume_limit <= 1.0:
            raise ValueError(f"volume_limit must be in (0, 1], got {self.volume_limit}")
        if not 0 <= self.price_impact * self.volume_limit**2 < 1:
            raise ValueError(
                f"price_impact must be >= 0 and price_impact x volume_limit^2 below 1 (a move of "
                f"100%), got {self.price_impact} x {self.volume_limit}^2"
            )

    def capacity(self, bar: Bar, already_filled: float) -> float:
        return volume_capacity(self.volume_limit, bar.volume, already_filled)

    def fill_price(
        self, side: Side, price: float, quantity: float, bar: Bar, rng: np.random.Generator
    ) -> float:
        return volume_share_price(
            price, side.sign, quantity, bar.volume, self.volume_limit, self.price_impact
        )
