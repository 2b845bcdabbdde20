"""How far to trust a sweep's best point: the overfitting statistics of `metrics.overfitting` over the
points' period returns, with a verdict in plain words. Written as `overfitting.json` next to the
results table; the sweep report shows it.

The trials are the distinct successful runs (two points of one run count once). The best point is
the results table's first by the ranking objective; its probabilistic Sharpe ratio (against 0), its
deflated Sharpe ratio (against the expected best of that many trials without skill) and its
minimum track record length use its own period returns; PBO compares all the trials' returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec
import numpy as np
import polars as pl

from backtester.metrics.overfitting import (
    cscv,
    deflated_sharpe,
    expected_max_sharpe,
    min_track_record,
    moments,
    probabilistic_sharpe,
    sharpe,
)

OVERFITTING = "overfitting.json"
BLOCKS = 16
SIGNIFICANT = 0.95
# Fewer trials than this say little about selection; PBO needs a few periods per block too.
MIN_TRIALS = 4
MIN_PERIODS = 4 * BLOCKS


class Selection(msgspec.Struct, frozen=True, kw_only=True):
    """`sharpe` and `expected_max_sharpe` are per period; `min_track_record` and `periods` count
    periods of `period_seconds`; a statistic that could not be computed is None."""

    trials: int
    periods: int
    period_seconds: float
    best_index: int | None
    sharpe: float | None = None
    skewness: float | None = None
    kurtosis: float | None = None
    sharpe_variance: float | None = None
    expected_max_sharpe: float | None = None
    psr: float | None = None
    dsr: float | None = None
    min_track_record: float | None = None
    pbo: float | None = None
    pbo_splits: int | None = None
    verdict: str


def assess(
    table: pl.DataFrame,
    returns: Mapping[int, list[float]],
    ranked: pl.DataFrame,
    period_seconds: float,
) -> Selection:
    """`ranked`: the table's successful points, best first; `returns` by point index."""
    distinct: dict[str, int] = {}
    for row in table.filter(pl.col("status") == "ok").iter_rows(named=True):
        if row["index"] in returns and len(returns[row["index"]]) >= 2:
            distinct.setdefault(row["run_id"], row["index"])
    trials = len(distinct)
    best = int(ranked["index"][0]) if ranked.height else None
    periods = len(returns[best]) if best is not None and best in returns else 0
    if best is None or trials < 2 or periods < 2:
        return Selection(
            trials=trials,
            periods=periods,
            period_seconds=period_seconds,
            best_index=best,
            verdict="Too few successful points with returns to judge the selection.",
        )
    matrix = np.array([returns[i] for i in distinct.values()]).T
    ratios = np.array([sharpe(matrix[:, j]) for j in range(matrix.shape[1])])
    variance = float(np.var(ratios, ddof=1))
    series = np.asarray(returns[best])
    sr = sharpe(series)
    skew, kurt = moments(series)
    pbo = cscv(matrix, BLOCKS) if trials >= MIN_TRIALS and periods >= MIN_PERIODS else None
    found = Selection(
        trials=trials,
        periods=periods,
        period_seconds=period_seconds,
        best_index=best,
        sharpe=sr,
        skewness=skew,
        kurtosis=kurt,
        sharpe_variance=variance,
        expected_max_sharpe=expected_max_sharpe(trials, variance),
        psr=_finite(probabilistic_sharpe(sr, periods, skew, kurt)),
        dsr=_finite(deflated_sharpe(sr, periods, skew, kurt, trials, variance)),
        min_track_record=_finite(min_track_record(sr, skew, kurt)),
        pbo=pbo.pbo if pbo else None,
        pbo_splits=pbo.splits if pbo else None,
        verdict="",
    )
    return msgspec.structs.replace(found, verdict=verdict(found))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def verdict(s: Selection) -> str:
    """The statistics in a few plain sentences, worst news first."""
    said: list[str] = []
    if s.pbo is not None:
        chance = f"{s.pbo:.0%}"
        if s.pbo > 0.5:
            said.append(
                f"Likely overfit: in {chance} of the {s.pbo_splits} ways of splitting the data in "
                "halves, the best point of one half did worse than the median point on the other."
            )
        elif s.pbo > 0.2:
            said.append(
                f"Some overfitting: in {chance} of the splits the in-sample best fell below the "
                "median out of sample."
            )
        else:
            said.append(
                f"The choice holds up out of sample: the in-sample best fell below the median "
                f"in only {chance} of the splits."
            )
    else:
        said.append(
            f"Not enough trials or periods for PBO (needs {MIN_TRIALS} trials and {MIN_PERIODS} "
            "periods)."
        )
    if s.dsr is not None:
        if s.dsr >= SIGNIFICANT:
            said.append(
                f"The best Sharpe ratio is significant even after {s.trials} trials "
                f"(deflated Sharpe ratio {s.dsr:.2f} >= {SIGNIFICANT})."
            )
        else:
            said.append(
                f"The best Sharpe ratio is not significant after {s.trials} trials "
                f"(deflated Sharpe ratio {s.dsr:.2f} < {SIGNIFICANT}): the best of that many "
                "strategies without skill would often look as good."
            )
    if s.min_track_record is not None and s.min_track_record > s.periods:
        said.append(
            f"Its record is too short to tell from luck: {s.periods} periods, while "
            f"{math.ceil(s.min_track_record)} are needed at this Sharpe ratio."
        )
    elif s.min_track_record is None and s.sharpe is not None and s.sharpe <= 0:
        said.append("The best point does not even have a positive Sharpe ratio.")
    return " ".join(said)
