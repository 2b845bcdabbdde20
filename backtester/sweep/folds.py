"""Walk-forward folds: where each fold's training window and its test window lie in time.

Windows are half-open, [start, end) in epoch nanoseconds, counted from the first bar of the data:
fold k trains on [first + k * step, first + k * step + train) (anchored: from `first` always) and
tests on the `test` that follows, starting exactly where its training ends, so no bar is in both.
A fold exists only while its whole test window lies inside the data. `step` is at least `test`,
so test windows never overlap and the out-of-sample runs stitch into one curve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NS_PER = {
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3_600 * 10**9,
    "d": 86_400 * 10**9,
    "w": 604_800 * 10**9,
}
_DURATION = re.compile(r"^([1-9][0-9]*)([smhdw])$")


def duration_ns(text: str) -> int:
    """`"60d"` -> nanoseconds: a whole count and one of s, m, h, d, w."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(
            f"duration {text!r}: expected a whole count and a unit (s, m, h, d, w), e.g. 60d or 12h"
        )
    return int(match.group(1)) * NS_PER[match.group(2)]


@dataclass(frozen=True)
class Fold:
    number: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int


def folds(first: int, end: int, train: int, test: int, step: int, anchored: bool) -> list[Fold]:
    """The folds of data from `first` (its first bar) to `end` (exclusive: after its last bar)."""
    if train <= 0 or test <= 0:
        raise ValueError("train and test must be longer than zero")
    if step < test:
        raise ValueError("step must be at least test: test windows would overlap")
    found: list[Fold] = []
    while True:
        k = len(found)
        train_end = first + train + k * step
        if train_end + test > end:
            return found
        train_start = first if anchored else first + k * step
        found.append(Fold(k, train_start, train_end, train_end, train_end + test))
