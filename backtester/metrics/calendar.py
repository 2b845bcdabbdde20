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


def trading_calendar(ts_ns: np.ndarray) -> Calendar:
    """The calendar of bars opening at `ts_ns` (int64 UTC nanoseconds, ascending)."""
    days = ts_ns // NS_PER_DAY
    if not len(days):
        return Calendar("24/7", float(DAYS_PER_YEAR), 0)
    span_days = int(days[-1] - days[0]) + 1
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; 0 is Monday
    weekend_share = float(np.count_nonzero(weekday >= 5)) / len(days)
    if span_days < MIN_SPAN_DAYS or weekend_share > WEEKEND_SHARE:
        return Calendar("24/7", float(DAYS_PER_YEAR), _distinct(days))
    sessions = _distinct(session_days(ts_ns, "weekdays"))
    if span_days < MIN_OBSERVED_DAYS:
        return Calendar("weekdays", DAYS_PER_YEAR * 5 / 7, sessions)
    return Calendar("weekdays", sessions * DAYS_PER_YEAR / span_days, sessions)


def session_days(ts_ns: np.ndarray, kind: CalendarKind) -> np.ndarray:
    """The trading day of each bar: its UTC date, a weekend's moved to the next Monday on a weekday
    calendar."""
    days = ts_ns // NS_PER_DAY
    if kind == "24/7":
        return days
    weekday = (days + 3) % 7
    return np.where(weekday >= 5, days + (7 - weekday), days)


def last_of_each_day(values: np.ndarray, days: np.ndarray) -> np.ndarray:
    """`values` at the last bar of each trading day (days ascending)."""
    if not len(days):
        return values[:0]
    ends = np.flatnonzero(days[1:] != days[:-1])
    return np.concatenate((values[ends], values[-1:]))


def _distinct(sorted_days: np.ndarray) -> int:
    if not len(sorted_days):
        return 0
    return int(np.count_nonzero(sorted_days[1:] != sorted_days[:-1])) + 1
