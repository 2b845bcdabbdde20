"""The calendar a series trades on, for annualizing its returns: every day (crypto, 24/7) or
weekdays (stocks, and forex's five days), inferred from when its bars fall.

24/7: a year has 365 days. Weekdays: a year has the sessions the data shows per year (GOOG's daily
bars: about 252; holidays excluded), counted over the data's span. A series on weekdays also puts
a weekend bar (forex's Sunday evening open) into the next Monday's session.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

NS_PER_DAY = 86_400 * 10**9
DAYS_PER_YEAR = 365
# A calendar is 24/7 when more than this share of bars falls on a weekend (2/7 of them do on one);
# backtesting.py draws the line at the same place.
WEEKEND_SHARE = 2 / 7 * 0.6
# Shorter than a week, a series cannot show its weekends: it counts as 24/7.
MIN_SPAN_DAYS = 7
# Shorter than four weeks, the sessions per year are the weekdays of a year (no holiday seen yet).
MIN_OBSERVED_DAYS = 28

CalendarKind = Literal["24/7", "weekdays"]


class Calendar(NamedTuple):
    kind: CalendarKind
    sessions_per_year: float  # trading days in a year
    sessions: int  # trading days in the data


def trading_calendar(ts_ns: np.ndarray, spanned: Days | None = None) -> Calendar:
    """The calendar of bars opening at `ts_ns` (int64 UTC nanoseconds, ascending); `spanned`:
    `days_of(ts_ns)` when the caller took it already."""
    if not len(ts_ns):
        return Calendar("24/7", float(DAYS_PER_YEAR), 0)
    days, counts, _ = spanned or days_of(ts_ns)
    span_days = len(days)
    weekend_share = float(counts[_weekday(days) >= 5].sum()) / len(ts_ns)
    if span_days < MIN_SPAN_DAYS or weekend_share > WEEKEND_SHARE:
        return Calendar("24/7", float(DAYS_PER_YEAR), int(np.count_nonzero(counts)))
    sessions = _distinct(_session_of(days, "weekdays")[counts > 0])
    if span_days < MIN_OBSERVED_DAYS:
        return Calendar("weekdays", DAYS_PER_YEAR * 5 / 7, sessions)
    return Calendar("weekdays", sessions * DAYS_PER_YEAR / span_days, sessions)


def session_days(ts_ns: np.ndarray, kind: CalendarKind) -> np.ndarray:
    """The trading day of each bar: its UTC date, a weekend's moved to the next Monday on a weekday
    calendar."""
    return _session_of(ts_ns // NS_PER_DAY, kind)


def session_ends(ts_ns: np.ndarray, kind: CalendarKind, spanned: Days | None = None) -> np.ndarray:
    """The index of the last bar of each trading day (`ts_ns` ascending); `spanned`:
    `days_of(ts_ns)` when the caller took it already."""
    if not len(ts_ns):
        return np.zeros(0, dtype=np.int64)
    days, counts, edges = spanned or days_of(ts_ns)
    traded = counts > 0
    sessions = _session_of(days, kind)[traded]
    last_bar = edges[1:][traded] - 1
    ends: np.ndarray = last_bar[np.append(sessions[1:] != sessions[:-1], True)]
    return ends


class Days(NamedTuple):
    """`days_of` a series: its UTC days, the bars on each, and where each day's bars start."""

    days: np.ndarray
    counts: np.ndarray
    edges: np.ndarray


def days_of(ts_ns: np.ndarray) -> Days:
    """Every UTC day from the first bar's to the last's, the bars on each, and where each day's
    bars start (and, last, where the bars end). Computed over days, not bars: a year of minutes
    would otherwise take a few day-number arrays as long as the series."""
    first, last = int(ts_ns[0]) // NS_PER_DAY, int(ts_ns[-1]) // NS_PER_DAY
    days = np.arange(first, last + 1, dtype=np.int64)
    edges = np.searchsorted(ts_ns, np.append(days, last + 1) * NS_PER_DAY, side="left")
    return Days(days, np.diff(edges), edges)


def _weekday(days: np.ndarray) -> np.ndarray:
    return (days + 3) % 7  # 1970-01-01 was a Thursday; 0 is Monday


def _session_of(days: np.ndarray, kind: CalendarKind) -> np.ndarray:
    if kind == "24/7":
        return days
    weekday = _weekday(days)
    return np.where(weekday >= 5, days + (7 - weekday), days)


def _distinct(sorted_days: np.ndarray) -> int:
    if not len(sorted_days):
        return 0
    return int(np.count_nonzero(sorted_days[1:] != sorted_days[:-1])) + 1
