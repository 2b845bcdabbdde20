"""A run directory's files, written so that the same result gives the same bytes, and published
atomically: the directory appears complete or not at all."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import polars as pl
import pyarrow.parquet as pq

from backtester.data.atomic import naming
from backtester.results import RunResult

FRAMES = ("trades", "fills", "orders", "equity")
MANIFEST = "manifest.json"
CONFIG = "config.toml"
STATS = "stats.json"


def write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Every option that could vary is pinned (one row group, zstd level, statistics, which columns
    are dictionary-encoded), and nothing time- or host-dependent is written, so the same frame
    gives the same bytes in any process. Only text columns are dictionary-encoded: they repeat a
    few values; a price or equity column has nearly as many values as rows, so its dictionary is
    built only to be abandoned (that made writing a year of equity 2.3x slower and 15% larger)."""
    pq.write_table(
        frame.to_arrow(),
        path,
        row_group_size=max(frame.height, 1),
        compression="zstd",
        compression_level=3,
        write_statistics=True,
        use_dictionary=[name for name, dtype in frame.schema.items() if dtype == pl.String],
        store_schema=True,
    )


def stats_document(stats: Mapping[str, Any]) -> dict[str, Any]:
    """Stats as JSON values. JSON has no NaN or infinity, so those become the strings "nan", "inf",
    "-inf"; every finite float round-trips exactly (msgspec writes the shortest exact repr)."""
    return {key: _plain(value) for key, value in stats.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, bool | str | int) and not isinstance(value, np.generic):
        return value
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return "nan"
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
        return number
    if isinstance(value, np.integer):
        return int(value)
    raise TypeError(f"cannot write stat of type {type(value).__name__}")


def encode_json(document: Any) -> bytes:
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"


def write_outputs(directory: Path, result: RunResult, config_toml: str) -> None:
    (directory / CONFIG).write_text(config_toml, encoding="utf-8")
    (directory / STATS).write_bytes(encode_json(stats_document(result.stats)))
    for name in FRAMES:
        write_parquet(getattr(result, name), directory / f"{name}.parquet")


def output_names() -> list[str]:
    return [CONFIG, STATS, *(f"{name}.parquet" for name in FRAMES)]


def publish(parent: Path, name: str, fill: Callable[[Path], None]) -> Path:
    """Write a directory through `fill` under a temporary name, then rename it into place.

    On any failure (an interrupt included) the temporary directory is removed. An existing directory of
    the same name is swapped out by two renames, so a reader never sees a half-written one; if another
    process publishes the same name concurrently, the first one in stays.
    """
    parent.mkdir(parents=True, exist_ok=True)
    final = parent / name
    staging = parent / f".{name}.{os.getpid()}.tmp"
    retired = parent / f".{name}.{os.getpid()}.old"
    for leftover in (staging, retired):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        staging.mkdir()
        fill(staging)
        if final.exists():
            final.rename(retired)
        try:
            staging.rename(final)
        except OSError:
            if not final.is_dir():
                raise
            # Another process published the same name in between. Names derive from content, so its
            # directory holds the same run: keep it and drop ours.
            shutil.rmtree(staging)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if retired.exists() and not final.exists():
            retired.rename(final)
        if isinstance(exc, OSError):
            raise naming(exc, final) from exc
        raise
    shutil.rmtree(retired, ignore_errors=True)
    return final
