"""The reference strategies, importable as `from backtester.strategies import SmaCross`."""

from backtester.strategy.library.sma_cross import SmaCross, SmaCrossParams
from backtester.strategy.library.sma_extended import SmaExtended, SmaExtendedParams

BUILTIN = {"SmaCross": SmaCross, "SmaExtended": SmaExtended}

__all__ = ["BUILTIN", "SmaCross", "SmaCrossParams", "SmaExtended", "SmaExtendedParams"]
