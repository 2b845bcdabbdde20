"""The README's demo: SmaCross on real Binance BTC/USDT 1-minute bars shipped in the repo."""

from backtester import Backtest
from backtester.strategies import SmaCross

bt = Backtest(
    "golden/data/binance_BTC-USDT_1m.parquet", SmaCross, cash=100_000, fee_rate=0.001, seed=7
)
result = bt.run(fast=10, slow=30)
print(result)
print(result.stats)
print(result.trades.head())
