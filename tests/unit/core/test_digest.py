"""The digest's definition: each field framed by its name and length, little-endian payloads."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest
import xxhash

from backtester.core.digest import DIGEST_ALGORITHM, LEGACY_ALGORITHM, Digest


def framed(name: str, payload: bytes) -> bytes:
    return name.encode() + b"\x00" + len(payload).to_bytes(8, "little") + payload


def test_the_digest_is_xxh3_128_over_the_framed_little_endian_fields() -> None:
    digest = Digest()
    digest.add_array("price", np.array([1.5, -0.0]))
    digest.add_array("row", np.array([3, 2**40]))
    digest.add_joined("side", "buy\x1fsell")
    expected = xxhash.xxh3_128(
        framed("price", struct.pack("<2d", 1.5, -0.0))
        + framed("row", struct.pack("<2q", 3, 2**40))
        + framed("side", b"buy\x1fsell")
    ).hexdigest()
    assert DIGEST_ALGORITHM == "xxh3-128"
    assert digest.hexdigest() == expected
    assert len(expected) == 32


def test_byte_order_and_width_do_not_change_the_digest() -> None:
    """An array is digested by its values: big-endian or narrower integers give the same bytes."""
    one, other = Digest(), Digest()
    one.add_array("x", np.array([1.25, 2.5], dtype=">f8"))
    one.add_array("n", np.array([7, 8], dtype=np.int32))
    other.add_array("x", np.array([1.25, 2.5]))
    other.add_array("n", np.array([7, 8], dtype=np.int64))
    assert one.hexdigest() == other.hexdigest()


def test_the_older_blake2b_digest_is_kept_for_run_directories_recorded_with_it() -> None:
    digest = Digest(LEGACY_ALGORITHM)
    digest.add_array("equity", np.array([100.0]))
    expected = hashlib.blake2b(framed("equity", struct.pack("<d", 100.0)), digest_size=32)
    assert digest.hexdigest() == expected.hexdigest()


def test_an_unknown_algorithm_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown digest algorithm 'md5'"):
        Digest("md5")


def test_an_array_of_another_kind_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot digest array flags of dtype bool"):
        Digest().add_array("flags", np.array([True]))
