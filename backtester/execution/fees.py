"""Fee models. Any object with `fee` (see `domain.models.FeeModel`) plugs in."""

from __future__ import annotations

import msgspec

from backtester.domain.enums import MAKER, Liquidity


class FixedRateFee(msgspec.Struct, frozen=True):
    """The same rate on the notional of every fill (0.001 = 0.1%)."""

    rate: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.rate < 1:
            raise ValueError(f"fee rate must be >= 0 and below 1 (100%), got {self.rate}")

    def fee(self, notional: float, liquidity: Liquidity) -> float:
        return notional * self.rate


class MakerTakerFee(msgspec.Struct, frozen=True):
    """Separate rates for fills that rested on the book (maker) and fills that took liquidity (taker).

    A negative maker rate (a rebate) is not supported: fees are never negative in this engine.
    """

    maker: float = 0.0
    taker: float = 0.0

    def __post_init__(self) -> None:
        if not (0 <= self.maker < 1 and 0 <= self.taker < 1):
            raise ValueError(
                "fee rates must be >= 0 and below 1 (100%), "
                f"got maker={self.maker} taker={self.taker}"
            )

    def fee(self, notional: float, liquidity: Liquidity) -> float:
        return notional * (self.maker if liquidity is MAKER else self.taker)
