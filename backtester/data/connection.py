"""How a data command reaches an exchange through ccxt, and how it retries: the settings the fetch
of a series and the fetch of an exchange's markets share, with their defaults in one place."""

from __future__ import annotations

import msgspec


class Connection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    api_url: str | None = None
    rate_limit_ms: int | None = None
    timeout_ms: int = 10_000
    max_retries: int = 8
    # A host that does not resolve or refuses connections: attempts before saying so.
    unreachable_attempts: int = 2
    retry_base_ms: int = 500
    retry_max_ms: int = 60_000
    max_retry_after_s: float = 900.0
