"""The reference strategies, importable as `from backtester.strategies import SmaCross`."""

from backtester.strategy.library.hourly_trend_cross import (
    HourlyTrendCross,
    HourlyTrendCrossParams,
)
from backtester.strategy.library.sma_cross import SmaCross, SmaCrossParams
from backtester.strategy.library.sma_extended import SmaExtended, SmaExtendedParams
from backtester.strategy.library.smc_order_blocks import SmcOrderBlocks, SmcOrderBlocksParams

BUILTIN = {
    "SmaCross": SmaCross,
    "SmaExtended": SmaExtended,
    "SmcOrderBlocks": SmcOrderBlocks,
    "HourlyTrendCross": HourlyTrendCross,
}

__all__ = [
    "BUILTIN",
    "HourlyTrendCross",
    "HourlyTrendCrossParams",
    "SmaCross",
    "SmaCrossParams",
    "SmaExtended",
    "SmaExtendedParams",
    "SmcOrderBlocks",
    "SmcOrderBlocksParams",
]
