from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from backtester.config import RunConfig
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
