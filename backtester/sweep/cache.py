"""A worker's local copy of the sweep's input files, keyed by content hash.

A file is fetched from the object store once per machine: written to a temporary name in the cache
directory, checked against its sha256, then renamed into place, so workers sharing the directory
never see half a file and at worst fetch the same file twice. Loaded frames stay in memory for every
later run that names the same file; Parquet is read memory-mapped.
"""

from __future__ import annotations

import itertools
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

import polars as pl
import pyarrow.parquet as pq
import structlog

from backtester.config import FileSource
from backtester.data.atomic import sha256_file
from backtester.runs.inputs import SourceFrame, read_file_source
from backtester.sweep.spec import DataRef

log = structlog.get_logger("backtester.sweep.cache")

Fetch = Callable[[str, BinaryIO], Awaitable[None]]


class DataMismatch(ValueError):
    """A fetched file whose content does not hash to the name it was asked for."""


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "backtester"


class DataCache:
    def __init__(self, directory: Path, fetch: Fetch, *, frames_kept: int = 8) -> None:
        self.directory = directory / "data"
        self._fetch = fetch
        self._verified: set[str] = set()
        self._frames: OrderedDict[tuple[str, str, bool], SourceFrame] = OrderedDict()
        self._frames_kept = frames_kept
        self._temp_names = itertools.count()
        self.fetched: list[str] = []

    async def path(self, ref: DataRef) -> Path:
        """The verified local file for `ref`, fetched first if this machine does not have it."""
        target = self.directory / f"{ref.sha256}{ref.suffix}"
        if ref.sha256 in self._verified:
            return target
        if target.is_file():
            if sha256_file(target) == ref.sha256:
                self._verified.add(ref.sha256)
                return target
            log.warning("cache.corrupt", file=str(target), action="fetching it again")
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = self.directory / f".{ref.sha256}.{os.getpid()}.{next(self._temp_names)}.part"
        try:
            with partial.open("wb") as handle:
                await self._fetch(ref.sha256, handle)
            found = sha256_file(partial)
            if found != ref.sha256:
                raise DataMismatch(f"data {ref.sha256[:16]} fetched with sha256 {found[:16]}")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        self._verified.add(ref.sha256)
        self.fetched.append(ref.sha256)
        log.info("cache.fetched", sha256=ref.sha256[:16], bytes=ref.size, file=str(target))
        return target

    def load(self, source: FileSource, ref: DataRef, path: Path) -> SourceFrame:
        """The validated frame of `source` from the file `path(ref)` returned, read as the
        source's series; kept in memory for later runs. Synchronous, so it can run on the
        worker's run thread next to the engine."""
        key = (ref.sha256, source.series, source.repair)
        if key in self._frames:
            self._frames.move_to_end(key)
            return self._frames[key]
        if path.suffix.lower() == ".parquet":
            frame = pl.from_arrow(pq.read_table(path, memory_map=True))
            assert isinstance(frame, pl.DataFrame)  # a table converts to a frame, never a series
            loaded = read_file_source(source, frame)
        else:
            loaded = read_file_source(source, path)
        self._frames[key] = loaded
        if len(self._frames) > self._frames_kept:
            self._frames.popitem(last=False)
        return loaded
