"""How much a strategy's registered indicators depend on the history before them.

A recursive indicator (EMA, RSI, ATR, ADX, ...) started later gives different values for the same bar:
its seed came from other bars. That is not look-ahead, but it means the first values of a run are not
the values a longer history would give. Re-run the strategy on the data starting at a few seeded
later rows and compare each indicator bar by bar: how far apart they are after 0-9, 10-99, 100-999
and 1,000+ bars of the shorter history, and after how many bars they agree within 1e-9 relative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from backtester.lookahead.check import EngineFactory, Snapshot, run_snapshot

SETTLED = 1e-9
BUCKETS = ((0, 10), (10, 100), (100, 1_000), (1_000, None))
DEFAULT_STARTS = 3


@dataclass(frozen=True)
class Drift:
    """One indicator's dependence on the history before it, the worst over the starts tried."""

    instrument: str
    indicator: str
    settles_after: int | None  # bars of history after which values agree within 1e-9 (None: never)
    worst: tuple[float, ...]  # largest relative difference in each of BUCKETS (NaN: no such bars)
    starts: tuple[int, ...]

    def __str__(self) -> str:
        labels = ("<10", "10-99", "100-999", ">=1000")
        spread = ", ".join(
            f"{label} bars: {_number(value)}"
            for label, value in zip(labels, self.worst, strict=True)
            if not np.isnan(value)
        )
        settled = (
            f"agrees within {SETTLED:g} from its first value"
            if self.settles_after == 0
            else f"agrees within {SETTLED:g} after {self.settles_after:,} bars"
            if self.settles_after is not None
            else "still differs at the end of the data"
        )
        return (
            f"{self.instrument} {self.indicator}: {settled}; largest relative difference {spread}"
        )


def start_rows(bars: int, starts: int, seed: int) -> tuple[int, ...]:
    """Later first rows to try, in the first half of the data, from a generator seeded by `seed`."""
    candidates = np.arange(1, max(2, bars // 2), dtype=np.int64)
    if bars < 4:
        return ()
    if starts >= len(candidates):
        return tuple(int(s) for s in candidates)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 1])))
    return tuple(int(s) for s in np.sort(rng.choice(candidates, size=starts, replace=False)))


def warmup_drift(
    factory: EngineFactory,
    data: dict[str, pl.DataFrame],
    full: Snapshot,
    *,
    starts: int = DEFAULT_STARTS,
    seed: int = 0,
) -> tuple[Drift, ...]:
    if not any(full.indicators.values()):
        return ()
    primary = next(iter(data))
    ts = data[primary]["ts"].to_numpy()
    rows = start_rows(len(ts), starts, seed)
    per_indicator: dict[tuple[str, str], list[np.ndarray]] = {}
    for start in rows:
        since = int(ts[start])
        later = {s: f.filter(pl.col("ts") >= since) for s, f in data.items()}
        shorter = run_snapshot(factory, later).indicators
        for symbol, named in full.indicators.items():
            skipped = data[symbol].height - later[symbol].height
            for name, values in named.items():
                other = shorter.get(symbol, {}).get(name)
                if other is not None:
                    difference = relative_difference(values[skipped:], other)
                    per_indicator.setdefault((symbol, name), []).append(difference)
    return tuple(
        _summary(symbol, name, differences, rows)
        for (symbol, name), differences in per_indicator.items()
    )


def relative_difference(longer: np.ndarray, shorter: np.ndarray) -> np.ndarray:
    """|a - b| / max(|a|, |b|) per bar (0 where equal); NaN where the shorter history has no value
    yet (its warm-up) or the values are not numbers."""
    a = np.asarray(longer, dtype=np.float64)
    b = np.asarray(shorter, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.maximum(np.abs(a), np.abs(b))
        difference = np.where(a == b, 0.0, np.abs(a - b) / scale)
    difference[np.isnan(b)] = np.nan
    difference[np.isnan(a) & ~np.isnan(b)] = np.inf
    return difference


def _summary(
    symbol: str, name: str, differences: list[np.ndarray], starts: tuple[int, ...]
) -> Drift:
    worst: list[float] = []
    for low, high in BUCKETS:
        parts = [d[low:high] for d in differences if len(d) > low]
        known = [p[~np.isnan(p)] for p in parts]
        values = np.concatenate(known) if known else np.zeros(0)
        worst.append(float(values.max()) if len(values) else float("nan"))
    settles: int | None = 0
    for d in differences:
        unsettled = np.flatnonzero(d > SETTLED)
        if len(unsettled) and unsettled[-1] == len(d) - 1:
            settles = None
            break
        if len(unsettled) and settles is not None:
            settles = max(settles, int(unsettled[-1]) + 1)
    return Drift(symbol, name, settles, tuple(worst), starts)


def _number(value: float) -> str:
    return "inf" if np.isinf(value) else f"{value:.1e}" if value else "0"
