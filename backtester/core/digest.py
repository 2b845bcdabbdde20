"""Content digests that prove two results identical, bit for bit."""

from __future__ import annotations

import hashlib

import numpy as np

STRING_SEPARATOR = "\x1f"


class Digest:
    """Incremental BLAKE2b-256 over typed arrays and strings, each framed by its name and length.

    BLAKE2b rather than SHA-256: as strong, and about 1.6x faster on CPUs without SHA extensions,
    which matters when a year of minutes puts 8 MB of equity curve through it on every run."""

    def __init__(self) -> None:
        self._h = hashlib.blake2b(digest_size=32)

    def add_array(self, name: str, values: np.ndarray) -> None:
        data = np.ascontiguousarray(values)
        if data.dtype.kind == "f":
            data = data.astype("<f8", copy=False)
        elif data.dtype.kind in "iu":
            data = data.astype("<i8", copy=False)
        else:
            raise TypeError(f"cannot digest array {name} of dtype {data.dtype}")
        self._frame(name, data.data.cast("B"))

    def add_joined(self, name: str, joined: str) -> None:
        """A list of strings joined by STRING_SEPARATOR (joined by the caller: a polars column
        joins itself far faster than a Python list would)."""
        self._frame(name, joined.encode())

    def _frame(self, name: str, payload: bytes | memoryview) -> None:
        self._h.update(name.encode() + b"\x00" + len(payload).to_bytes(8, "little"))
        self._h.update(payload)

    def hexdigest(self) -> str:
        return self._h.hexdigest()
