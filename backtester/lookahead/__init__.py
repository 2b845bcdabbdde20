"""The look-ahead check (`python -m backtester lookahead CONFIG`, `Backtest.check_lookahead()`).

Re-runs a backtest on its data cut at seeded rows and reports every signal, order, fill, trade or
registered indicator at or before a cut that differs from the full run: a strategy that reads only
what was known at each bar has none. Also reports how much each registered indicator depends on the
history before it (the warm-up of recursive indicators), which is informational.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from backtester.lookahead.check import (
    DEFAULT_CUTS,
    EngineFactory,
    Finding,
    check_cuts,
    run_snapshot,
)
from backtester.lookahead.warmup import DEFAULT_STARTS, Drift, warmup_drift

__all__ = ["DEFAULT_CUTS", "Drift", "Finding", "LookaheadReport", "check_lookahead"]


@dataclass(frozen=True)
class LookaheadReport:
    strategy: str
    bars: int
    seed: int
    cuts: tuple[int, ...]
    findings: tuple[Finding, ...]
    drift: tuple[Drift, ...]

    @property
    def ok(self) -> bool:
        """True when nothing up to any cut differs from the full run."""
        return not self.findings

    def __str__(self) -> str:
        lines = [
            f"look-ahead check: {self.strategy} on {self.bars:,} bars, the data cut at "
            f"{len(self.cuts)} seeded points (seed {self.seed})"
        ]
        if self.ok:
            lines.append(
                "  none found: up to every cut, the signals, orders, fills, closed trades and "
                "registered indicators equal the full run's"
            )
        else:
            lines.append(f"  LOOK-AHEAD: {len(self.findings)} difference(s) up to a cut")
            lines += [f"  {finding}" for finding in self.findings]
        if self.drift:
            lines.append(
                "warm-up (indicators against the history before them; informational, not "
                "look-ahead):"
            )
            lines += [f"  {drift}" for drift in self.drift]
        return "\n".join(lines)


def check_lookahead(
    factory: EngineFactory,
    data: dict[str, pl.DataFrame],
    *,
    cuts: int = DEFAULT_CUTS,
    seed: int = 0,
    warmup_starts: int = DEFAULT_STARTS,
) -> LookaheadReport:
    """`factory` builds the run's engine for given data (the same strategy, parameters, models)."""
    if cuts < 1:
        raise ValueError(f"cuts must be >= 1, got {cuts}")
    full = run_snapshot(factory, data)
    report = check_cuts(factory, data, full, cuts=cuts, seed=seed)
    drift = warmup_drift(factory, data, full, starts=warmup_starts, seed=seed)
    return LookaheadReport(
        full.result.strategy, report.bars, seed, report.cuts, report.findings, drift
    )
