"""What the compiled-path identity tests compare: a run's results against dense mode's."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from backtester import RunResult
from backtester.engine import SetupError

# Dense first: a run the compiled path declines is checked against the dense result made.
MODES = ("dense", "signal", "compiled")


def same_stats(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal statistics, NaN equal to NaN."""
    return a.keys() == b.keys() and all(
        x == b[k] or (isinstance(x, float) and math.isnan(x) and math.isnan(b[k]))
        for k, x in a.items()
    )


def assert_same_as_dense(
    dense: RunResult, results: dict[str, RunResult] | Iterable[RunResult], *frames: str
) -> None:
    """Each result (by mode, or unnamed) has dense's digest, statistics and the named frames
    (`orders`, `fills`, `trades`, `equity`, `funding`), equal to the bit."""
    named = results.items() if isinstance(results, dict) else enumerate(results)
    for mode, result in named:
        assert result.digest == dense.digest, mode
        for frame in frames:
            assert getattr(result, frame).equals(getattr(dense, frame)), (mode, frame)
        assert same_stats(result.stats, dense.stats), mode


def in_every_mode(make: Any) -> dict[str, RunResult]:
    """`make(mode)` for dense mode, signal mode and the compiled path."""
    return {mode: make(mode) for mode in MODES}


def in_every_mode_or_handed_back(make: Any, *reasons: str) -> dict[str, RunResult] | str:
    """The run in every mode; or, where the compiled path declines it for one of `reasons`, that
    reason, once `auto` (which hands the run to the event path) is shown to give dense's digest."""
    results: dict[str, RunResult] = {}
    try:
        for mode in MODES:
            results[mode] = make(mode)
    except SetupError as declined:
        reason = str(declined)
        assert any(expected in reason for expected in reasons), reason
        assert make("auto").digest == results["dense"].digest
        return reason
    return results


def assert_identical(results: dict[str, RunResult]) -> None:
    """Every mode's result is dense's, statistics equal without NaN allowance (spot runs)."""
    dense = results["dense"]
    for mode, result in results.items():
        assert result.digest == dense.digest, mode
        assert result.orders.equals(dense.orders), mode
        assert result.fills.equals(dense.fills), mode
        assert result.trades.equals(dense.trades), mode
        assert result.equity.equals(dense.equity), mode
        assert result.stats == dense.stats, mode
