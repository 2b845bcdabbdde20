"""An instrument's price and quantity grids (tick and lot sizes) as plain functions of floats: the
one definition the instrument, the risk engine, the venue and the compiled order path use
(`compiled/signal_path.py` calls these functions by name and numba compiles them into its kernel,
as it does `accounting.arithmetic`). Only floats go in and out.

A grid point is `steps * step` as the float nearest to the exact decimal product (3 lots of 0.1 are
0.3, not 0.30000000000000004): the product is scaled by `step_scale(step)` (10 to the decimal places
of the step as written), rounded to a whole number there and scaled back, one correctly rounded
division. That is exact for grid points below 2**51 units of the step's last decimal (2.2e7 coins on
a lot of 1e-8), beyond which a float cannot tell neighbouring points apart reliably anyway.
"""

from __future__ import annotations

import functools
import math
from decimal import Decimal

# A small tolerance keeps 0.3 / 0.1 = 2.9999999999999996 from losing a whole lot.
FLOOR_TOLERANCE = 1e-9


@functools.cache
def step_scale(step: float) -> float:
    """10 ** (decimal places of `step` as written): 0.001 -> 1000.0, 0.5 -> 10.0, 5.0 -> 10.0."""
    exponent = Decimal(repr(step)).as_tuple().exponent
    digits = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return float(10**digits)


def grid_point(steps: float, step: float, scale: float) -> float:
    """`steps * step` as the float nearest to the exact decimal product (`scale`: `step_scale`)."""
    return round(steps * step * scale) / scale


def nearest_on_grid(value: float, step: float, scale: float) -> float:
    """The grid point nearest to `value` (a price rounded to the tick grid)."""
    return grid_point(round(value / step), step, scale)


def floor_on_grid(value: float, step: float, scale: float) -> float:
    """The largest grid point not above `value` (a quantity floored to the lot grid: never up)."""
    return grid_point(math.floor(value / step + FLOOR_TOLERANCE), step, scale)
