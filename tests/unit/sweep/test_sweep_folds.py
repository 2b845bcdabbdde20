"""Walk-forward folds: exact windows, rolling and anchored, and for any lengths a test window that
starts where its training ends and lies inside the data."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtester.sweep.config import SweepConfigError, decode_sweep_config
from backtester.sweep.folds import NS_PER, duration_ns, folds

DAY = NS_PER["d"]


def test_durations() -> None:
    assert duration_ns("60d") == 60 * DAY
    assert duration_ns("12h") == 12 * 3_600 * 10**9
    assert duration_ns("2w") == 14 * DAY
    assert duration_ns("90m") == 90 * 60 * 10**9
    for bad in ("0d", "1.5d", "d", "60", "3mo", "-1d"):
        with pytest.raises(ValueError, match="duration"):
            duration_ns(bad)


def test_rolling_folds_of_a_hundred_days() -> None:
    found = folds(0, 100 * DAY, 60 * DAY, 15 * DAY, 15 * DAY, anchored=False)
    windows = [
        (f.train_start // DAY, f.train_end // DAY, f.test_start // DAY, f.test_end // DAY)
        for f in found
    ]
    assert windows == [(0, 60, 60, 75), (15, 75, 75, 90)]  # a third would test until day 105
    assert [f.number for f in found] == [0, 1]


def test_anchored_folds_start_training_at_the_first_bar() -> None:
    found = folds(5, 5 + 100 * DAY, 60 * DAY, 10 * DAY, 20 * DAY, anchored=True)
    assert [(f.train_start, (f.train_end - 5) // DAY, (f.test_end - 5) // DAY) for f in found] == [
        (5, 60, 70),
        (5, 80, 90),
    ]


def test_a_step_shorter_than_the_test_window_is_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        folds(0, 100 * DAY, 60 * DAY, 15 * DAY, 10 * DAY, anchored=False)
    raw = {
        "base": {},
        "grid": {"fast": [1]},
        "walk_forward": {"train": "60d", "test": "15d", "step": "10d"},
    }
    with pytest.raises(SweepConfigError, match="test windows would overlap"):
        decode_sweep_config(raw, "wf.toml")
    raw["walk_forward"] = {"train": "60 days", "test": "15d"}
    with pytest.raises(SweepConfigError, match="duration '60 days'"):
        decode_sweep_config(raw, "wf.toml")


@settings(max_examples=60, deadline=None)
@given(
    first=st.integers(0, 10**12),
    span=st.integers(1, 400),
    train=st.integers(1, 120),
    test=st.integers(1, 60),
    extra=st.integers(0, 30),
    anchored=st.booleans(),
)
def test_no_test_window_overlaps_its_training_or_another_test_window(
    first: int, span: int, train: int, test: int, extra: int, anchored: bool
) -> None:
    hour = NS_PER["h"]
    end = first + span * hour
    found = folds(first, end, train * hour, test * hour, (test + extra) * hour, anchored)
    assert len(found) == max(0, (span - train - test) // (test + extra) + 1)
    for fold in found:
        assert first <= fold.train_start < fold.train_end == fold.test_start < fold.test_end <= end
        assert fold.test_end - fold.test_start == test * hour
        assert fold.train_start == (
            first if anchored else first + fold.number * (test + extra) * hour
        )
    for before, after in itertools.pairwise(found):
        assert before.test_end <= after.test_start
