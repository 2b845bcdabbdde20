"""Content digests that prove two results identical, bit for bit (adr/0022).

A digest is a hash over typed arrays and strings, each framed by its name and length: the name, a
zero byte, the payload's length as 8 little-endian bytes, then the payload (floats as little-endian
IEEE 754 binary64, integers as little-endian int64, strings as UTF-8). Results are digested with
XXH3-128; run directories recorded before it name no algorithm and were digested with BLAKE2b-256
over the same framing, which is kept so that they still verify."""

from __future__ import annotations

import hashlib
from typing import Protocol

import numpy as np
import xxhash

STRING_SEPARATOR = "\x1f"

DIGEST_ALGORITHM = "xxh3-128"
# What a run directory whose manifest names no algorithm was digested with.
LEGACY_ALGORITHM = "blake2b-256"


class _Hash(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


def _blake2b_256() -> _Hash:
    return hashlib.blake2b(digest_size=32)


_ALGORITHMS = {DIGEST_ALGORITHM: xxhash.xxh3_128, LEGACY_ALGORITHM: _blake2b_256}
ALGORITHMS = tuple(_ALGORITHMS)


class Digest:
    """Incremental digest over typed arrays and strings, each framed by its name and length.

    XXH3-128 by default: a specified, portable, non-cryptographic hash that runs at memory speed
    (tens of GB/s), where BLAKE2b took a third of a compiled run on a year of minutes. The digest
    compares a replay with its record; the files of a run directory carry their own SHA-256."""

    def __init__(self, algorithm: str = DIGEST_ALGORITHM) -> None:
        try:
            self._h: _Hash = _ALGORITHMS[algorithm]()
        except KeyError:
            known = ", ".join(ALGORITHMS)
            raise ValueError(f"unknown digest algorithm {algorithm!r} (known: {known})") from None

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
        self.add_joined_utf8(name, joined.encode())

    def add_joined_utf8(self, name: str, joined: bytes | memoryview) -> None:
        """`add_joined` of a text the caller has as UTF-8 already (no decoding and encoding again)."""
        self._frame(name, joined)

    def _frame(self, name: str, payload: bytes | memoryview) -> None:
        self._h.update(name.encode() + b"\x00" + len(payload).to_bytes(8, "little"))
        self._h.update(payload)

    def hexdigest(self) -> str:
        return self._h.hexdigest()
