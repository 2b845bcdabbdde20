"""`data markets` through ccxt's real binance class against the loopback stub: the stored snapshot
is what was served, the signed tiers request carries the key only in its header, and credentials
never show anywhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import pytest
from binance_stub import API_KEY, API_SECRET, FIXTURES, BinanceStub, leverage_brackets

from backtester.cli import main
from backtester.data.errors import CatalogError
from backtester.data.markets import read_snapshot, snapshot_dir
from backtester.domain.instrument import Instrument, MarginMode

SERVED = json.loads((FIXTURES / "binance_fapi_exchangeInfo_subset.json").read_text())
TIERS: dict[str, list[dict[str, Any]]] = json.loads(
    (FIXTURES / "ccxt_binance_leverage_tiers_subset.json").read_text()
)
KEY_ENV, SECRET_ENV = "BACKTESTER_BINANCE_API_KEY", "BACKTESTER_BINANCE_API_SECRET"


@pytest.fixture(scope="module")
def stub() -> Iterator[BinanceStub]:
    with BinanceStub() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh(stub: BinanceStub, monkeypatch: pytest.MonkeyPatch) -> None:
    stub.requests.clear()
    stub.headers.clear()
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(SECRET_ENV, raising=False)


def markets(stub: BinanceStub, root: Path, *extra: str) -> int:
    args = ["data", "markets", "--exchange", "binance", "--api-url", stub.url, "--root", str(root)]
    return main([*args, *extra])


def with_keys(monkeypatch: pytest.MonkeyPatch, secret: str = API_SECRET) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    monkeypatch.setenv(SECRET_ENV, secret)


def test_the_stored_snapshot_is_what_the_exchange_served(
    stub: BinanceStub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with_keys(monkeypatch)
    assert markets(stub, tmp_path) == 0
    assert "binance swap: 5 markets, leverage tiers of 4" in capsys.readouterr().out
    snapshot = read_snapshot(tmp_path, "binance", "swap")
    served = {row["symbol"]: row for row in SERVED["symbols"]}
    assert {m["id"]: m["info"] for m in snapshot.markets.values()} == served
    assert sorted(snapshot.markets) == [
        "BTC/USDT:USDT",
        "BTC/USDT:USDT-240628",
        "ETH/USDT:USDT",
        "LINK/USDT:USDT",
        "XRP/USDT:USDT",
    ]
    brackets = {entry["symbol"]: entry["brackets"] for entry in leverage_brackets()}
    assert sorted(snapshot.tiers) == sorted(TIERS)
    for symbol, rows in TIERS.items():
        stored = snapshot.tiers[symbol]
        assert [t["info"] for t in stored] == brackets[snapshot.markets[symbol]["id"]]
        for tier, row in zip(stored, rows, strict=True):
            for field in ("minNotional", "maxNotional", "maintenanceMarginRate", "maxLeverage"):
                assert tier[field] == row[field]
            assert tier["info"]["cum"] == float(row["info"]["cum"])
    parsed = ccxt.binance().parse_market(served["XRPUSDT"])
    expected = Instrument.from_ccxt(parsed, TIERS["XRP/USDT:USDT"], leverage=3)
    built = snapshot.instrument("XRP/USDT:USDT", leverage=3)
    assert built == expected
    assert (built.tick_size, built.lot_size, built.min_notional) == (0.0001, 0.1, 5.0)
    assert built.liquidation_fee == 0.015
    assert len(built.margin_tiers) == len(TIERS["XRP/USDT:USDT"])


def test_the_key_travels_only_in_its_header_and_no_secret_is_kept_or_shown(
    stub: BinanceStub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with_keys(monkeypatch)
    assert markets(stub, tmp_path) == 0
    printed = capsys.readouterr()
    (signed,) = [i for i, r in enumerate(stub.requests) if "leverageBracket" in r]
    assert stub.headers[signed]["X-MBX-APIKEY"] == API_KEY
    assert "signature=" in stub.requests[signed]
    public = [h for i, h in enumerate(stub.headers) if i != signed]
    assert public and all("X-MBX-APIKEY" not in h for h in public)  # markets: no key sent
    stored = b"".join(
        p.read_bytes() for p in sorted(snapshot_dir(tmp_path, "binance", "swap").iterdir())
    )
    for secret in (API_KEY, API_SECRET):
        assert all(secret not in request for request in stub.requests)
        assert secret not in printed.out + printed.err
        assert secret.encode() not in stored


def test_without_credentials_the_tiers_are_refused_in_one_line_and_nothing_is_stored(
    stub: BinanceStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert markets(stub, tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert KEY_ENV in err and SECRET_ENV in err and "--no-tiers" in err
    assert not any("leverageBracket" in r for r in stub.requests)  # refused before asking
    with pytest.raises(CatalogError, match="no binance swap markets snapshot"):
        read_snapshot(tmp_path, "binance", "swap")


def test_a_refused_signature_keeps_the_previous_snapshot_and_shows_no_secret(
    stub: BinanceStub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with_keys(monkeypatch)
    assert markets(stub, tmp_path) == 0
    before = read_snapshot(tmp_path, "binance", "swap").manifest
    capsys.readouterr()
    wrong = "not-the-secret-5e6f"
    with_keys(monkeypatch, secret=wrong)
    assert markets(stub, tmp_path) == 2
    err = capsys.readouterr().err
    assert "Signature for this request is not valid" in err
    assert err.strip().count("\n") == 0
    assert wrong not in err and API_KEY not in err
    assert read_snapshot(tmp_path, "binance", "swap").manifest == before


def test_markets_without_tiers_need_no_key_and_spot_has_none(
    stub: BinanceStub, tmp_path: Path
) -> None:
    assert markets(stub, tmp_path, "--no-tiers") == 0
    untiered = read_snapshot(tmp_path, "binance", "swap")
    assert untiered.manifest.tiers is None and untiered.tiers == {}
    assert untiered.instrument("BTC/USDT:USDT", margin_mode=MarginMode.CROSS).margin_tiers == ()
    stub.requests.clear()
    assert markets(stub, tmp_path, "--market", "spot") == 0
    assert stub.requests == ["/api/v3/exchangeInfo"]
    spot = read_snapshot(tmp_path, "binance", "spot")
    assert list(spot.markets) == ["BTC/USDT"] and spot.manifest.tiers is None
    assert spot.instrument("BTC/USDT").tick_size == 0.01
