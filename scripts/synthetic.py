"""Deterministic synthetic 1-minute OHLCV series for benchmarks: a seeded random walk on a 0.01 tick grid."""

from __future__ import annotations

import numpy as np
import polars as pl

START_MS = 1_672_531_200_000  # 2023-01-01 00:00 UTC


def synthetic_bars(n: int, seed: int = 42, start_price: float = 30_000.0) -> pl.DataFrame:
    rng = np.random.Generator(np.random.PCG64(seed))
    log_returns = rng.normal(0.0, 0.0008, n)
    close = np.round(start_price * np.exp(np.cumsum(log_returns)), 2)
    open_ = np.concatenate(([start_price], close[:-1]))
    wick_up = np.abs(rng.normal(0.0, 0.0004, n))
    wick_down = np.abs(rng.normal(0.0, 0.0004, n))
    high = np.round(np.maximum(open_, close) * (1.0 + wick_up), 2)
    low = np.round(np.minimum(open_, close) * (1.0 - wick_down), 2)
    volume = np.round(rng.gamma(2.0, 5.0, n), 6)
    return pl.DataFrame(
        {
            "timestamp_ms": START_MS + np.arange(n, dtype=np.int64) * 60_000,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )
