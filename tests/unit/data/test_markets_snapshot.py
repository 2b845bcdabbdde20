"""The markets snapshot on disk: one commit point, hashed files, nothing half-written or trusted
after it changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from backtester.data import markets as snapshots
from backtester.data.errors import CatalogError
from backtester.data.markets import read_snapshot, snapshot_dir, write_snapshot
from backtester.data.series_manifest import SourceEntry

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "fixtures"
TIERS = json.loads((FIXTURES / "ccxt_binance_leverage_tiers_subset.json").read_text())


def market(symbol: str, tick: float) -> dict[str, Any]:
    base, quote = symbol.split(":", maxsplit=1)[0].split("/")
    return {
        "symbol": symbol,
        "type": "swap",
        "base": base,
        "quote": quote,
        "settle": quote,
        "contractSize": 1.0,
        "linear": True,
        "precision": {"price": tick, "amount": 0.1},
        "limits": {"amount": {"min": 0.1, "max": None}, "cost": {"min": 5.0, "max": None}},
        "info": {"liquidationFee": "0.015000"},
    }


def store(root: Path, tick: float) -> snapshots.MarketsManifest:
    return write_snapshot(
        root,
        "binance",
        "swap",
        {"XRP/USDT:USDT": market("XRP/USDT:USDT", tick)},
        {"XRP/USDT:USDT": TIERS["XRP/USDT:USDT"]},
        fetched_at="2024-03-22T11:00:00.000Z",
        source=SourceEntry(kind="ccxt", detail="test"),
        ccxt_version="4.5.90",
        precision_mode="tick_size",
    )


def test_a_new_snapshot_replaces_the_old_one_whole(tmp_path: Path) -> None:
    first = store(tmp_path, 0.0001)
    second = store(tmp_path, 0.001)
    assert first.markets.sha256 != second.markets.sha256
    assert first.tiers == second.tiers  # same content, same file
    directory = snapshot_dir(tmp_path, "binance", "swap")
    assert sorted(p.name for p in directory.glob("*.json")) == sorted(
        ["manifest.json", second.markets.path, second.tiers.path if second.tiers else ""]
    )
    assert read_snapshot(tmp_path, "binance", "swap").instrument("XRP/USDT:USDT").tick_size == 0.001


def test_a_write_that_dies_before_its_manifest_leaves_the_previous_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store(tmp_path, 0.0001)
    real = snapshots.atomic_write_bytes

    def crash_at_manifest(path: Path, data: bytes) -> None:
        if path.name == "manifest.json":
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(snapshots, "atomic_write_bytes", crash_at_manifest)
    with pytest.raises(OSError, match="disk full"):
        store(tmp_path, 0.001)
    monkeypatch.undo()
    assert (
        read_snapshot(tmp_path, "binance", "swap").instrument("XRP/USDT:USDT").tick_size == 0.0001
    )
    directory = snapshot_dir(tmp_path, "binance", "swap")
    assert len(list(directory.glob("markets-*.json"))) == 2  # the orphan, until the next write
    store(tmp_path, 0.01)
    assert len(list(directory.glob("markets-*.json"))) == 1


def test_a_changed_or_missing_file_is_not_trusted(tmp_path: Path) -> None:
    manifest = store(tmp_path, 0.0001)
    directory = snapshot_dir(tmp_path, "binance", "swap")
    path = directory / manifest.markets.path
    path.write_text(path.read_text().replace("0.0001", "0.0002"))
    with pytest.raises(CatalogError, match="content hash does not match"):
        read_snapshot(tmp_path, "binance", "swap")
    path.unlink()
    with pytest.raises(CatalogError, match="named by the markets manifest but missing"):
        read_snapshot(tmp_path, "binance", "swap")


def test_no_snapshot_says_how_to_store_one(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="data markets --exchange kraken --market spot"):
        read_snapshot(tmp_path, "kraken", "spot")
    with pytest.raises(CatalogError, match="market 'margin' is not one of spot, swap"):
        read_snapshot(tmp_path, "binance", "margin")
