from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import polars as pl
import pytest

from backtester.config import CatalogSource, ConfigError, RunConfig
from backtester.manifest import Partition
from backtester.runs import inputs

REPO = Path(__file__).resolve().parents[3]
CLEAN = "golden/data/binance_BTC-USDT_1m.parquet"
RAW = "golden/data/binance_BTC-USDT_1m_raw.csv"


def config(*sources: dict[str, Any]) -> RunConfig:
    return msgspec.convert({"data": list(sources), "strategy": {"name": "SmaCross"}}, RunConfig)


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


def test_file_input_records_hash_rows_span_and_repair() -> None:
    loaded = inputs.load_data(
        config({"kind": "file", "path": RAW, "symbol": "BTC/USDT", "repair": True})
    )
    [entry] = loaded.inputs
    assert entry.sha256 == hashlib.sha256((REPO / RAW).read_bytes()).hexdigest()
    assert entry.rows == 30954  # as read; the repair report says what changed
    assert entry.repair is not None
    assert (entry.repair.rows_out, entry.repair.identical_duplicates_dropped) == (30900, 30)
    assert entry.repair.conflicting_duplicates_resolved == 24
    assert (entry.first_ts, entry.last_ts) == ("2024-03-01T00:00:00Z", "2024-03-22T10:59:00Z")
    assert loaded.frames["BTC/USDT"].height == 30900
    assert loaded.repairs == [entry.repair]


@dataclass(frozen=True)
class FakePartition:
    path: str
    sha256: str
    rows: int


class FakeCatalog:
    """Stands in for backtester.data.catalog (another branch) with its read_series contract."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def read_series(self, *args: Any, **kwargs: Any) -> SimpleNamespace:
        self.calls.append((args, kwargs))
        frame = pl.read_parquet(REPO / CLEAN).head(120)
        parts = (FakePartition("binance/spot/BTC-USDT/1m/2024.parquet", "ab" * 32, 120),)
        return SimpleNamespace(frame=frame, partitions=parts)


def test_catalog_source_is_read_through_read_series(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCatalog()
    monkeypatch.setitem(sys.modules, inputs.CATALOG_MODULE, fake)  # type: ignore[arg-type]
    source = {
        "kind": "catalog",
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "timeframe": "1m",
        "start": "2024-03-01",
        "end": 1709258400000,
        "root": "catalog",
    }
    loaded = inputs.load_data(config(source))
    assert fake.calls == [
        (
            ("catalog", "binance", "BTC/USDT", "1m"),
            {"market": "spot", "start": "2024-03-01", "end": 1709258400000, "verify": False},
        )
    ]
    [entry] = loaded.inputs
    assert entry.partitions == [Partition("binance/spot/BTC-USDT/1m/2024.parquet", "ab" * 32, 120)]
    listing = msgspec.json.encode([["binance/spot/BTC-USDT/1m/2024.parquet", "ab" * 32, 120]])
    assert entry.sha256 == hashlib.sha256(listing).hexdigest()
    assert (entry.source, entry.rows, entry.path) == (
        "catalog",
        120,
        "catalog:binance/spot/BTC/USDT/1m",
    )
    assert loaded.frames["BTC/USDT"].height == 120


def test_catalog_source_without_the_catalog_module_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(inputs, "CATALOG_MODULE", "backtester.data.not_installed_catalog")
    source = CatalogSource(exchange="binance", symbol="BTC/USDT", timeframe="1m")
    with pytest.raises(ConfigError) as caught:
        inputs.read_catalog(source, 2)
    assert str(caught.value).startswith(
        "data[2].kind: catalog sources need backtester.data.not_installed_catalog"
    )
