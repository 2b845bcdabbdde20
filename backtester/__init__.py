"""backtester: a deterministic, event-driven backtesting library for crypto markets."""

__version__ = "0.1.0"
