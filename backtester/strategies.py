"""The reference strategies, importable as `from backtester.strategies import SmaCross`."""

from backtester.strategy.library.sma_cross import SmaCross, SmaCrossParams
from backtester.strategy.library.sma_extended import SmaExtended, SmaExtendedParams
from backtester.strategy.library.smc_order_blocks import SmcOrderBlocks, SmcOrderBlocksParams

BUILTIN = {"SmaCross": SmaCross, "SmaExtended": SmaExtended, "SmcOrderBlocks": SmcOrderBlocks}

__all__ = [
    "BUILTIN",
    "SmaCross",
    "SmaCrossParams",
    "SmaExtended",
    "SmaExtendedParams",
    "SmcOrderBlocks",
    "SmcOrderBlocksParams",
]
