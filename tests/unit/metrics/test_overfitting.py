"""Overfitting statistics against known answers: the deflated Sharpe ratio paper's worked example,
pure noise (PBO near one half, DSR not significant), a planted edge (PBO low, DSR significant)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtester.metrics.overfitting import (
    cscv,
    deflated_sharpe,
    expected_max_sharpe,
    min_track_record,
    moments,
    period_returns,
    probabilistic_sharpe,
    sharpe,
)

DAYS = 250  # the paper annualizes daily Sharpe ratios with sqrt(250)


def test_the_deflated_sharpe_ratio_papers_numerical_example() -> None:
    # Bailey & Lopez de Prado (2014), section 6: 100 trials whose annualized Sharpe ratios vary
    # by 1/2, a selected strategy with annualized SR 2.5 over five years of daily returns
    # (T = 1250), skewness -3, kurtosis 10: SR0 = 0.1132 per day and DSR = 0.9004.
    sr = 2.5 / math.sqrt(DAYS)
    variance = 0.5 / DAYS
    assert expected_max_sharpe(100, variance) == pytest.approx(0.1132, abs=5e-5)
    assert deflated_sharpe(sr, 1250, -3.0, 10.0, 100, variance) == pytest.approx(0.9004, abs=5e-5)


def test_psr_is_one_half_at_the_benchmark_and_reaches_the_confidence_at_min_trl() -> None:
    assert probabilistic_sharpe(0.1, 500, 0.0, 3.0, benchmark=0.1) == pytest.approx(0.5)
    for sr, skew, kurt in ((0.1, 0.0, 3.0), (0.05, -1.0, 6.0), (0.2, 0.5, 4.0)):
        needed = min_track_record(sr, skew, kurt, confidence=0.95)
        assert probabilistic_sharpe(sr, needed, skew, kurt) == pytest.approx(0.95)  # type: ignore[arg-type]
    assert min_track_record(-0.1, 0.0, 3.0) == math.inf


def test_moments_of_a_normal_sample_and_of_a_flat_one() -> None:
    rng = np.random.Generator(np.random.PCG64(1))
    skew, kurt = moments(rng.normal(0, 1, 200_000))
    assert abs(skew) < 0.02
    assert kurt == pytest.approx(3.0, abs=0.05)
    assert moments(np.zeros(10)) == (0.0, 3.0)
    assert sharpe(np.zeros(10)) == 0.0


def _noise(seed: int, periods: int = 1024, strategies: int = 40) -> np.ndarray:
    rng = np.random.Generator(np.random.PCG64(seed))
    return rng.normal(0.0, 0.01, (periods, strategies))


def test_pure_noise_strategies_have_a_pbo_near_one_half_and_no_significant_best() -> None:
    found = [cscv(_noise(seed)).pbo for seed in (1, 2, 3, 4)]
    assert 0.4 < float(np.mean(found)) < 0.6, found
    matrix = _noise(1)
    ratios = np.array([sharpe(matrix[:, j]) for j in range(matrix.shape[1])])
    best = matrix[:, int(np.argmax(ratios))]
    skew, kurt = moments(best)
    dsr = deflated_sharpe(sharpe(best), len(best), skew, kurt, 40, float(np.var(ratios, ddof=1)))
    assert dsr < 0.95
    assert probabilistic_sharpe(sharpe(best), len(best), skew, kurt) > dsr  # deflation bites


def test_a_strategy_with_a_planted_edge_has_a_low_pbo_and_a_significant_dsr() -> None:
    matrix = _noise(7)
    matrix[:, 13] += 0.002  # a Sharpe ratio of 0.2 per period, among 39 without skill
    result = cscv(matrix)
    assert result.splits == 12870  # C(16, 8)
    assert result.pbo < 0.05
    ratios = np.array([sharpe(matrix[:, j]) for j in range(matrix.shape[1])])
    assert int(np.argmax(ratios)) == 13
    skew, kurt = moments(matrix[:, 13])
    variance = float(np.var(ratios, ddof=1))
    assert deflated_sharpe(ratios[13], 1024, skew, kurt, 40, variance) > 0.95


def test_cscv_ranks_by_hand_on_four_blocks() -> None:
    # Column 1 beats column 0 in blocks 0 and 1, loses in blocks 2 and 3, by mirror images: the
    # in-sample winner of the split {0, 1} | {2, 3} is column 1, which then ranks last.
    up = np.array([0.01, 0.03, 0.02, 0.04])
    down = -up
    col0 = np.concatenate([down, down, up, up])
    col1 = np.concatenate([up, up, down, down])
    result = cscv(np.column_stack([col0, col1]), blocks=4)
    assert result.splits == 6
    # Splits {0,1},{2,3} and their mirrors pick the loser; mixed splits tie (mid rank, logit 0).
    assert result.pbo == 1.0
    # The rank of the picked column among 2 is 1 (w = 1/3, logit ln 1/2) or a tie (w = 1/2).
    assert sorted(result.logits.tolist()) == pytest.approx([math.log(0.5)] * 2 + [0.0] * 4)


def test_period_returns_compound_to_the_total_return_and_fill_gaps_with_zero() -> None:
    minute = 60 * 10**9
    ts = np.array([0, 1, 2, 59, 60, 61, 185], dtype=np.int64) * minute
    equity = np.array([100.0, 101, 102, 103, 104, 105, 110])
    returns = period_returns(ts, equity)
    assert len(returns) == 186  # minutes: 186 periods fit in the 1024 allowed
    assert np.prod(1 + returns) == pytest.approx(110 / 100)
    assert not returns[3:59].any() and not returns[62:185].any()
    assert returns[185] == pytest.approx(110 / 105 - 1)
    # A month of minutes is measured in hours, a year in days.
    month = np.arange(0, 30 * 1440, dtype=np.int64) * minute
    assert len(period_returns(month, np.full(len(month), 5.0))) == 720
    year = np.arange(0, 365 * 1440, 60, dtype=np.int64) * minute
    assert len(period_returns(year, np.full(len(year), 5.0))) == 365
