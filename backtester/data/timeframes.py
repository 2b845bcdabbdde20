"""Timeframes as epoch-aligned millisecond grids, and UTC time parsing for the command line.

Only fixed-length timeframes are supported (`s`, `m`, `h`, `d`): their bars start on multiples of
the length counted from the Unix epoch, which is midnight UTC, so `1d` bars open at 00:00 UTC and
`4h` bars at 00:00, 04:00, ... Weeks and months have no fixed grid from the epoch and are rejected.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from backtester.data.errors import DataError
from backtester.domain.times import utc_ms

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_TIMEFRAME = re.compile(r"^([1-9][0-9]*)([smhd])$")
RESAMPLE_TARGETS = ("5m", "15m", "1h", "4h", "1d")


def timeframe_ms(timeframe: str) -> int:
    """Length of one bar in milliseconds, e.g. `"15m"` -> 900000."""
    match = _TIMEFRAME.match(timeframe)
    if match is None:
        raise DataError(
            f"timeframe {timeframe!r} is not supported: "
            "use a count and one of s, m, h, d (e.g. 1m, 4h)"
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def format_timeframe(ms: int) -> str:
    """A length in milliseconds as a timeframe, `86400000` -> `1d`; odd lengths in ms."""
    for unit in ("d", "h", "m", "s"):
        if ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms} ms"


def parse_utc_ms(text: str) -> int:
    """An ISO date or datetime (UTC unless it names an offset) or integer epoch milliseconds."""
    try:
        return utc_ms(text)
    except ValueError as exc:
        raise DataError(str(exc)) from None


def format_ms(ts_ms: int) -> str:
    """Readable UTC time for messages: `2024-03-01 00:00` (seconds shown only when present)."""
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    pattern = "%Y-%m-%d %H:%M:%S" if moment.second or moment.microsecond else "%Y-%m-%d %H:%M"
    text = moment.strftime(pattern)
    if ts_ms % 1000:
        text += f".{ts_ms % 1000:03d}"
    return text


def floor_to(ts_ms: int, step_ms: int) -> int:
    return ts_ms - ts_ms % step_ms


def ceil_to(ts_ms: int, step_ms: int) -> int:
    return -((-ts_ms) // step_ms) * step_ms
