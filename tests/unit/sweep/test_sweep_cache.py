"""The worker's data cache: fetched once, verified by hash, renamed into place, frames reused."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import BinaryIO

import pytest

from backtester.config import FileSource
from backtester.data.bars import load_bars
from backtester.sweep.cache import DataCache, DataMismatch
from backtester.sweep.spec import DataRef
from tests.sweep_support import small_data


class FakeStore:
    """The object store's `get_file`, serving given bytes and counting fetches."""

    def __init__(self, content: bytes) -> None:
        self.content = content
        self.fetches = 0

    async def get_file(self, name: str, into: BinaryIO) -> None:
        self.fetches += 1
        into.write(self.content)


@pytest.fixture
def parquet(tmp_path: Path) -> tuple[Path, DataRef]:
    path = small_data(tmp_path / "bars.parquet", rows=500)
    content = path.read_bytes()
    ref = DataRef("BTC/USDT", hashlib.sha256(content).hexdigest(), len(content), ".parquet")
    return path, ref


def test_a_file_is_fetched_once_then_served_from_disk_and_memory(
    tmp_path: Path, parquet: tuple[Path, DataRef]
) -> None:
    path, ref = parquet
    store = FakeStore(path.read_bytes())
    cache = DataCache(tmp_path / "cache", store.get_file)
    local = asyncio.run(cache.path(ref))
    source = FileSource(path="bars.parquet", symbol="BTC/USDT")
    first = cache.load(source, ref, local)
    again = cache.load(source, ref, asyncio.run(cache.path(ref)))
    assert first is again
    other_worker = DataCache(tmp_path / "cache", store.get_file)  # same machine, same directory
    assert asyncio.run(other_worker.path(ref)) == local
    assert store.fetches == 1
    assert first.frame.equals(load_bars(path).frame)
    assert [p.name for p in (tmp_path / "cache" / "data").iterdir()] == [f"{ref.sha256}.parquet"]


def test_content_that_does_not_match_its_hash_is_refused_and_not_kept(
    tmp_path: Path, parquet: tuple[Path, DataRef]
) -> None:
    _, ref = parquet
    cache = DataCache(tmp_path / "cache", FakeStore(b"tampered").get_file)
    with pytest.raises(DataMismatch, match=ref.sha256[:16]):
        asyncio.run(cache.path(ref))
    assert list((tmp_path / "cache" / "data").iterdir()) == []


def test_a_corrupted_cached_file_is_fetched_again(
    tmp_path: Path, parquet: tuple[Path, DataRef]
) -> None:
    path, ref = parquet
    target = tmp_path / "cache" / "data" / f"{ref.sha256}.parquet"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"half a file")
    store = FakeStore(path.read_bytes())
    assert asyncio.run(DataCache(tmp_path / "cache", store.get_file).path(ref)) == target
    assert store.fetches == 1
    assert target.read_bytes() == path.read_bytes()
