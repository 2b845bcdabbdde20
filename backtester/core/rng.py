"""Per-module random generators derived from one run seed.

Each module gets its own stream keyed by its name, so adding a random draw to one module never shifts the
numbers another module sees. The key is a content hash of the name, never `hash()`, which varies per process.
"""

from __future__ import annotations

import hashlib

import numpy as np


def module_rng(seed: int, module: str) -> np.random.Generator:
    key = int.from_bytes(hashlib.sha256(module.encode()).digest()[:8], "little")
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(entropy=seed, spawn_key=(key,)))
    )
