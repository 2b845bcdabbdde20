"""The verdict a sweep writes on its best point (`overfitting.json`), from a results table and the
points' period returns: trials of pure noise are called overfit and not significant, a planted edge
among them holds up and is significant, a run proposed twice is one trial, and too little to judge
says so instead of printing numbers."""

from __future__ import annotations

import numpy as np
import polars as pl

from backtester.sweep.results import best
from backtester.sweep.selection import SIGNIFICANT, Selection, assess

PERIODS = 1024
TRIALS = 40


def _table(sharpe: list[float], run_ids: list[str] | None = None) -> pl.DataFrame:
    count = len(sharpe)
    return pl.DataFrame(
        {
            "index": list(range(count)),
            "run_id": run_ids or [f"run{i}" for i in range(count)],
            "status": ["ok"] * count,
            "sharpe": sharpe,
        }
    )


def _assess(matrix: np.ndarray, run_ids: list[str] | None = None) -> Selection:
    ratios = (matrix.mean(axis=0) / matrix.std(axis=0, ddof=1)).tolist()
    table = _table(ratios, run_ids)
    returns = {j: matrix[:, j].tolist() for j in range(matrix.shape[1])}
    return assess(table, returns, best(table, "sharpe", "maximize", table.height), 3600.0)


def _noise(seed: int) -> np.ndarray:
    rng = np.random.Generator(np.random.PCG64(seed))
    return rng.normal(0.0, 0.01, (PERIODS, TRIALS))


def test_the_best_of_pure_noise_is_called_overfit_and_not_significant() -> None:
    found = _assess(_noise(2))
    assert (found.trials, found.periods, found.pbo_splits) == (TRIALS, PERIODS, 12870)
    assert found.pbo is not None and found.pbo > 0.2
    assert found.dsr is not None and found.dsr < SIGNIFICANT
    assert found.psr is not None and found.psr > found.dsr
    assert "overfit" in found.verdict.lower()
    assert f"not significant after {TRIALS} trials" in found.verdict


def test_a_planted_edge_among_noise_holds_up_and_is_significant() -> None:
    matrix = _noise(7)
    matrix[:, 13] += 0.002
    found = _assess(matrix)
    assert found.best_index == 13
    assert found.pbo is not None and found.pbo < 0.05
    assert found.dsr is not None and found.dsr >= SIGNIFICANT
    assert found.verdict.startswith("The choice holds up out of sample")
    assert f"significant even after {TRIALS} trials" in found.verdict
    assert found.min_track_record is not None and found.min_track_record < PERIODS


def test_a_run_proposed_twice_counts_as_one_trial() -> None:
    matrix = _noise(3)[:, :6]
    matrix = np.column_stack([matrix, matrix[:, 0]])  # point 6 is point 0's run again
    found = _assess(matrix, [*(f"run{i}" for i in range(6)), "run0"])
    assert found.trials == 6


def test_too_few_points_or_periods_are_said_so() -> None:
    one = _assess(_noise(4)[:, :1])
    assert one.trials == 1 and one.pbo is None and one.dsr is None
    assert one.verdict.startswith("Too few successful points")
    short = _assess(_noise(4)[:32, :8])  # fewer periods than 16 blocks of 4
    assert short.pbo is None and short.dsr is not None
    assert short.verdict.startswith("Not enough trials or periods for PBO")
