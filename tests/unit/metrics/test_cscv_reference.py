"""The probability of backtest overfitting against a worked example and a reference.

Bailey, Borwein, López de Prado & Zhu (2015) give no split-by-split numerical example to check
against, so `cscv` is held to: a small matrix whose six splits are worked out by hand below; a
reference implementation written here the plain way the paper states the algorithm (each split's
rows gathered, each strategy's Sharpe ratio computed from them, the out-of-sample rank by
sorting), compared split by split on seeded matrices and on all 12 870 splits of S = 16; and the
paper's first test case, "full overfit", whose published outcome is a PBO of 1.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtester.metrics.overfitting import cscv


def reference_cscv(returns: np.ndarray, blocks: int) -> tuple[float, list[float]]:
    """(PBO, the logit of every split in `itertools.combinations` order), the paper's steps one
    by one: the rows cut into `blocks` equal blocks, each half of them in sample, the in-sample
    best (the first of equals) ranked among all N out of sample (1 the worst, equals sharing
    their mean rank), w = rank / (N + 1), logit ln(w / (1 - w)), PBO the share of logits <= 0."""
    periods, strategies = returns.shape
    size = periods // blocks
    assert size * blocks == periods
    parts = [returns[b * size : (b + 1) * size] for b in range(blocks)]
    logits = []
    for inside in itertools.combinations(range(blocks), blocks // 2):
        outside = [b for b in range(blocks) if b not in inside]
        sample = np.concatenate([parts[b] for b in inside])
        held_out = np.concatenate([parts[b] for b in outside])
        best = int(np.argmax(_sharpe_ratios(sample)))
        rank = _mean_ranks(_sharpe_ratios(held_out))[best]
        w = rank / (strategies + 1)
        logits.append(math.log(w / (1 - w)))
    return sum(v <= 0 for v in logits) / len(logits), logits


def _sharpe_ratios(rows: np.ndarray) -> list[float]:
    """Each column's mean over its standard deviation (ddof 1), 0 for a column that never moves."""
    mean = rows.mean(axis=0)
    sd = rows.std(axis=0, ddof=1)
    return [float(m / s) if s > 0 else 0.0 for m, s in zip(mean, sd, strict=True)]


def _mean_ranks(values: list[float]) -> list[float]:
    """Ranks from 1 (the lowest) by sorting; a run of equal values shares the mean of its ranks."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def test_six_splits_worked_by_hand() -> None:
    # Four blocks of two rows; every block of every strategy is (m + 1, m - 1) for its block mean
    # m, so over two blocks with means a and b the Sharpe ratio is
    # ((a + b) / 2) / sqrt((4 + (a - b)^2) / 3).
    #   A: m = 3, 3, -1, -1   (good early, bad late)
    #   B: m = 1, 1, 1, 1     (steady)
    #   C: m = -1, -1, 3, 3   (bad early, good late)
    # In sample {0, 1}: A 3/sqrt(4/3) = 2.60, B 0.87, C -0.87, so A is picked; out of sample
    # {2, 3}: A -0.87 is the lowest of three, rank 1, w = 1/4, logit ln(1/3). In sample {2, 3}
    # is the mirror image (C picked, last out of sample). Every other split holds one early and
    # one late block: A and C both 1/sqrt(20/3) = 0.39, B 0.87 in and out of sample, so B is
    # picked and ranks 3 of 3, w = 3/4, logit ln 3. PBO = 2 of 6 splits.
    means = {"A": [3, 3, -1, -1], "B": [1, 1, 1, 1], "C": [-1, -1, 3, 3]}
    columns = [
        np.array([v for m in ms for v in (m + 1, m - 1)], dtype=float) for ms in means.values()
    ]
    matrix = np.column_stack(columns) / 100
    result = cscv(matrix, blocks=4)
    low, high = math.log(1 / 3), math.log(3)
    # Splits in order: {0,1} {0,2} {0,3} {1,2} {1,3} {2,3}.
    assert result.logits.tolist() == pytest.approx([low, high, high, high, high, low])
    assert result.pbo == pytest.approx(1 / 3)
    assert result.splits == 6
    pbo, logits = reference_cscv(matrix, 4)
    assert pbo == pytest.approx(1 / 3)
    assert logits == pytest.approx([low, high, high, high, high, low])


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    blocks=st.sampled_from([2, 4, 6, 8]),
    strategies=st.integers(2, 8),
    rows=st.integers(2, 6),
    edge=st.floats(0.0, 0.5),
)
def test_cscv_equals_the_reference_split_by_split(
    seed: int, blocks: int, strategies: int, rows: int, edge: float
) -> None:
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.01, (blocks * rows, strategies))
    matrix[:, 0] += edge * 0.01  # sometimes one strategy is better
    result = cscv(matrix, blocks=blocks)
    pbo, logits = reference_cscv(matrix, blocks)
    assert result.logits.tolist() == pytest.approx(logits, rel=1e-9, abs=1e-12)
    assert result.pbo == pbo


def test_cscv_equals_the_reference_on_all_splits_of_sixteen_blocks() -> None:
    rng = np.random.default_rng(20150227)
    matrix = rng.normal(0.0, 0.01, (16 * 8, 10))
    matrix[:, 3] += 0.002
    result = cscv(matrix, blocks=16)
    pbo, logits = reference_cscv(matrix, 16)
    assert result.splits == len(logits) == math.comb(16, 8) == 12_870
    assert result.logits.tolist() == pytest.approx(logits, rel=1e-9, abs=1e-12)
    assert result.pbo == pbo


@pytest.mark.parametrize("blocks", [8, 16])
def test_the_papers_full_overfit_case_has_a_pbo_of_one(blocks: int) -> None:
    # The paper's test case 1: N = 100 strategies of T = 2 400 daily returns, each re-scaled and
    # re-centred to exactly the same Sharpe ratio (0) over the whole sample. A strategy's
    # in-sample mean then fixes its out-of-sample mean at the opposite, so the in-sample best is
    # always among the worst out of sample: PBO = 1 (the R package pbo's vignette runs the same
    # case, N = 100, T = 2 400, S = 8, and reports p_bo = 1.000000).
    rng = np.random.default_rng(765)
    matrix = rng.normal(0.0, 1.0, (2_400, 100))
    matrix = matrix / matrix.std(axis=0, ddof=1) / math.sqrt(252)
    matrix = matrix - matrix.mean(axis=0)
    result = cscv(matrix, blocks=blocks)
    assert result.pbo == 1.0
    assert float(np.max(result.logits)) < 0
