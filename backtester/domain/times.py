"""Times as people write them in configs and commands: ISO dates or epoch milliseconds, in UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime


def utc_ms(text: str) -> int:
    """An ISO date or datetime (UTC unless it names an offset) or integer epoch milliseconds;
    `ValueError` naming the text otherwise."""
    value = text.strip()
    if re.fullmatch(r"-?[0-9]+", value):
        return int(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"time {text!r} is neither an ISO date (2024-01-31, 2024-01-31T12:00) nor epoch ms"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)
