"""The Strategy base class users subclass, its context, and the module that connects it to the bus."""

from backtester.strategy.base import Strategy
from backtester.strategy.context import OpenOrder, StrategyContext

__all__ = ["OpenOrder", "Strategy", "StrategyContext"]
