"""How much to trust the best of many backtests: probabilistic and deflated Sharpe ratios, the minimum
track record length, and the probability of backtest overfitting by combinatorially symmetric
cross-validation. Pure functions over per-period returns (docs/optimization.md has the formulas).

Every Sharpe ratio here is per period (mean over standard deviation of the period returns, not
annualized), as the papers write them; kurtosis is the plain fourth standardized moment (3 for a
normal distribution), not the excess.

- Bailey, D. H. and López de Prado, M. (2012), "The Sharpe Ratio Efficient Frontier", Journal of
  Risk 15(2): the probabilistic Sharpe ratio and the minimum track record length.
- Bailey, D. H. and López de Prado, M. (2014), "The Deflated Sharpe Ratio: Correcting for Selection
  Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management 40(5).
- Bailey, D. H., Borwein, J., López de Prado, M. and Zhu, Q. J. (2015), "The Probability of Backtest
  Overfitting", Journal of Computational Finance 20(4).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


def sharpe(returns: np.ndarray) -> float:
    """Mean over sample standard deviation; 0 for a series that never moves."""
    if len(returns) < 2:
        return math.nan
    std = float(np.std(returns, ddof=1))
    return float(np.mean(returns)) / std if std > 0 else 0.0


def moments(returns: np.ndarray) -> tuple[float, float]:
    """(skewness, kurtosis) of the series; (0, 3), the normal's, for a series that never moves."""
    centred = returns - np.mean(returns)
    variance = float(np.mean(centred**2))
    if variance <= 0:
        return 0.0, 3.0
    return (
        float(np.mean(centred**3)) / variance**1.5,
        float(np.mean(centred**4)) / variance**2,
    )


def _sharpe_variance_term(sr: float, skew: float, kurtosis: float) -> float:
    """1 - skew * SR + (kurtosis - 1) / 4 * SR^2: how non-normal returns widen SR's error."""
    return 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2


def probabilistic_sharpe(
    sr: float, observations: int, skew: float, kurtosis: float, benchmark: float = 0.0
) -> float:
    """PSR: the probability that the true Sharpe ratio exceeds `benchmark`, given `sr` measured
    over `observations` returns with this skewness and kurtosis."""
    term = _sharpe_variance_term(sr, skew, kurtosis)
    if observations < 2 or not term > 0 or not math.isfinite(sr):
        return math.nan
    z = (sr - benchmark) * math.sqrt(observations - 1) / math.sqrt(term)
    return _NORMAL.cdf(z)


def expected_max_sharpe(trials: int, variance: float) -> float:
    """SR0: the expected largest Sharpe ratio of `trials` strategies without skill whose Sharpe
    ratios vary with `variance` (the false strategy theorem)."""
    if trials < 2 or not variance > 0:
        return 0.0
    first = _NORMAL.inv_cdf(1.0 - 1.0 / trials)
    second = _NORMAL.inv_cdf(1.0 - 1.0 / (trials * math.e))
    return math.sqrt(variance) * ((1.0 - EULER_GAMMA) * first + EULER_GAMMA * second)


def deflated_sharpe(
    sr: float, observations: int, skew: float, kurtosis: float, trials: int, variance: float
) -> float:
    """DSR: the PSR of the best of `trials` strategies against SR0 instead of zero."""
    benchmark = expected_max_sharpe(trials, variance)
    return probabilistic_sharpe(sr, observations, skew, kurtosis, benchmark)


def min_track_record(
    sr: float, skew: float, kurtosis: float, benchmark: float = 0.0, confidence: float = 0.95
) -> float:
    """MinTRL: the number of returns needed for the PSR against `benchmark` to reach `confidence`;
    infinite when `sr` does not beat the benchmark."""
    if not sr > benchmark:
        return math.inf
    z = _NORMAL.inv_cdf(confidence)
    return 1.0 + _sharpe_variance_term(sr, skew, kurtosis) * (z / (sr - benchmark)) ** 2


@dataclass(frozen=True)
class Pbo:
    """`pbo`: the share of the splits whose in-sample best ranks in the bottom half out of sample;
    `logits`: each split's logit of that strategy's out-of-sample relative rank."""

    pbo: float
    logits: np.ndarray
    blocks: int
    splits: int


def cscv(returns: np.ndarray, blocks: int = 16) -> Pbo:
    """The probability of backtest overfitting by combinatorially symmetric cross-validation.

    `returns` is T x N: the period returns of N strategies (the trials) over the same T periods.
    The rows are cut into `blocks` contiguous blocks; every choice of half of them is an in-sample
    set, the other half its out-of-sample set. For each split the strategy with the best in-sample
    Sharpe ratio is ranked among all N out of sample; its relative rank w = rank / (N + 1) gives
    the logit ln(w / (1 - w)), and PBO is the share of splits where that logit is <= 0 (the
    in-sample best does no better than the median out of sample). Ties pick the lowest column in
    sample and take the mid rank out of sample."""
    periods, strategies = returns.shape
    if blocks < 2 or blocks % 2:
        raise ValueError(f"blocks must be even and at least 2, got {blocks}")
    if periods < 2 * blocks:
        raise ValueError(f"{periods} periods are too few for {blocks} blocks of at least 2")
    if strategies < 2:
        raise ValueError("CSCV compares at least 2 strategies")
    edges = np.linspace(0, periods, blocks + 1).round().astype(np.int64)
    sums = np.add.reduceat(returns, edges[:-1], axis=0)
    squares = np.add.reduceat(returns**2, edges[:-1], axis=0)
    counts = np.diff(edges).astype(np.float64)
    chosen = np.array(
        [
            [1.0 if b in combo else 0.0 for b in range(blocks)]
            for combo in itertools.combinations(range(blocks), blocks // 2)
        ]
    )
    inside = _split_sharpe(chosen, sums, squares, counts)
    outside = _split_sharpe(1.0 - chosen, sums, squares, counts)
    best = np.argmax(inside, axis=1)
    picked = outside[np.arange(len(chosen)), best][:, None]
    below = np.sum(outside < picked, axis=1)
    ties = np.sum(outside == picked, axis=1)  # the picked strategy itself included
    rank = below + (ties + 1) / 2.0
    relative = rank / (strategies + 1)
    logits = np.log(relative / (1.0 - relative))
    return Pbo(float(np.mean(logits <= 0)), logits, blocks, len(chosen))


def _split_sharpe(
    chosen: np.ndarray, sums: np.ndarray, squares: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Each split's Sharpe ratio per strategy, from the blocks' sums (splits x strategies)."""
    n = (chosen @ counts)[:, None]
    mean = (chosen @ sums) / n
    mean_square = (chosen @ squares) / n
    variance = (mean_square - mean**2) * n / (n - 1)
    # A series that never moves has variance 0, up to the rounding of the two sums.
    moving = variance > 1e-12 * mean_square
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(moving, mean / np.sqrt(np.where(moving, variance, 1.0)), 0.0)
    return np.asarray(ratio)


# Period widths for the returns the statistics are computed on: the finest that gives at most
# MAX_PERIODS periods over the run (a month of minutes: hours; a year: days).
_WIDTHS_NS = [w * 60 * 10**9 for w in (1, 5, 15, 60, 240, 1440, 10080)]
MAX_PERIODS = 1024


def period_width(span_ns: int) -> int:
    for width in _WIDTHS_NS:
        if span_ns // width + 1 <= MAX_PERIODS:
            return width
    return _WIDTHS_NS[-1]


def period_returns(ts_ns: np.ndarray, equity: np.ndarray) -> np.ndarray:
    """The equity curve's return over each period of `period_width(span)` from its first bar (a
    period without a bar returns 0); every run over the same bars gets the same periods."""
    if len(ts_ns) == 0:
        return np.empty(0)
    width = period_width(int(ts_ns[-1] - ts_ns[0]))
    period = (ts_ns - ts_ns[0]) // width
    last = np.searchsorted(period, np.arange(int(period[-1]) + 1), side="right") - 1
    closing = equity[last]
    opening = np.concatenate(([equity[0]], closing[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(opening != 0, closing / opening - 1.0, 0.0))
