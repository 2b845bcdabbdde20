"""Volume-share slippage (how much of a bar's volume a taker may fill, and at what price) as plain
functions of floats: the one definition `execution.slippage.VolumeShareSlippage` calls and the
compiled order path compiles into its kernel (as it does `accounting.arithmetic`)."""

from __future__ import annotations


def volume_capacity(volume_limit: float, volume: float, already_filled: float) -> float:
    """What a bar of `volume` can still fill: its share `volume_limit` less what it filled already."""
    return max(volume_limit * volume - already_filled, 0.0)


def volume_share_price(
    price: float, sign: float, quantity: float, volume: float, volume_limit: float, impact: float
) -> float:
    """The taker's price for `quantity` on a bar of `volume` (`sign` +1 buys, -1 sells): moved
    against it by `impact * share ** 2`, the share of the bar's volume capped at `volume_limit`."""
    if volume <= 0:
        return price
    share = min(quantity / volume, volume_limit)
    return price * (1.0 + sign * impact * share * share)
