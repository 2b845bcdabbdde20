"""backtester: a deterministic, event-driven backtesting library for crypto markets.

from backtester import Backtest
from backtester.strategies import SmaCross
result = Backtest("golden/data/binance_BTC-USDT_1m.parquet", SmaCross, cash=100_000,
                  fee_rate=0.001).run(fast=10, slow=30)
"""

from backtester.backtest import Backtest
from backtester.config import FillConfig, IntrabarPath, RiskConfig
from backtester.data.bars import DataError, load_bars
from backtester.domain.enums import Liquidity, OrderType, Side, TimeInForce
from backtester.domain.instrument import Instrument
from backtester.domain.messages import Bar, OrderFilled
from backtester.execution.fees import FixedRateFee, MakerTakerFee
from backtester.execution.slippage import FixedBpsSlippage, NoSlippage, VolumeShareSlippage
from backtester.metrics.stats import Stats
from backtester.results import RunResult
from backtester.strategy.base import ParamsError, Strategy
from backtester.strategy.signal import SignalStrategy

__version__ = "0.1.0"

__all__ = [
    "Backtest",
    "Bar",
    "DataError",
    "FillConfig",
    "FixedBpsSlippage",
    "FixedRateFee",
    "Instrument",
    "IntrabarPath",
    "Liquidity",
    "MakerTakerFee",
    "NoSlippage",
    "OrderFilled",
    "OrderType",
    "ParamsError",
    "RiskConfig",
    "RunResult",
    "Side",
    "SignalStrategy",
    "Stats",
    "Strategy",
    "TimeInForce",
    "VolumeShareSlippage",
    "__version__",
    "load_bars",
]
