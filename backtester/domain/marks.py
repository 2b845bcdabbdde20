"""Mark prices aligned to an instrument's bars, as the venue and the accounts read them."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class MarkBars(NamedTuple):
    """Row i is the mark over bar i of the instrument: its path (open, high, low, close) when the
    mark series has a bar of the same time and length, else the mark known at the bar's close in all
    four. Without a mark series these are the bars' own prices (the last price marks)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
