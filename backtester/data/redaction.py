"""Credentials out of anything shown or stored: logs, error messages, manifests.

A URL may carry a password (`nats://user:secret@host`), a token (`nats://token@host`) or an API key in
its query (`?apiKey=...`); `redact` keeps the rest of the text readable and replaces only those.
"""

from __future__ import annotations

import re

MASK = "***"
_USERINFO = re.compile(
    r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^\s/@:]*)(?P<pw>:[^\s/@]*)?@"
)
_SECRET_PARAM = re.compile(
    r"(?i)(?P<name>[?&;][a-z0-9_.-]*(?:key|token|secret|signature|password|passwd|passphrase|auth)"
    r"[a-z0-9_.-]*=)[^&#\s'\"]*"
)


def redact(text: str) -> str:
    """`text` with every URL password, URL token and secret-looking query value masked."""
    text = _USERINFO.sub(_mask_userinfo, text)
    return _SECRET_PARAM.sub(lambda m: m["name"] + MASK, text)


def _mask_userinfo(match: re.Match[str]) -> str:
    if match["pw"] is None:
        # A lone name before @ is how NATS URLs carry a token.
        return f"{match['scheme']}{MASK}@"
    return f"{match['scheme']}{match['user']}:{MASK}@"


def without_userinfo(url: str) -> str:
    """A URL (or comma-separated URLs) with any user:password@ or token@ part removed."""
    return re.sub(r"//[^/@\s]*@", "//", url)
