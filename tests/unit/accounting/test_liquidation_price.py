"""Liquidation prices of isolated positions equal Binance USDⓈ-M's published formula (adr/0012),
computed here independently for random positions in every bracket of the shipped margin tiers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backtester.accounting.accounts import MarginAccount
from backtester.domain.instrument import Instrument, InstrumentError, MarginTier

TIERS = (
    Path(__file__).resolve().parents[2]
    / "data"
    / "fixtures"
    / "ccxt_binance_leverage_tiers_subset.json"
)


def shipped_tiers() -> dict[str, list[dict[str, Any]]]:
    loaded: dict[str, list[dict[str, Any]]] = json.loads(TIERS.read_text())
    return loaded


def margin_tiers(rows: list[dict[str, Any]]) -> tuple[MarginTier, ...]:
    return tuple(
        MarginTier(
            min_notional=row["minNotional"],
            max_notional=row["maxNotional"],
            maintenance_rate=row["maintenanceMarginRate"],
            maintenance_amount=float(row["info"]["cum"]),
            max_leverage=row["maxLeverage"],
        )
        for row in rows
    )


def published_liquidation_price(
    rows: list[dict[str, Any]], side: int, quantity: float, entry: float, wallet: float
) -> float:
    """LP = (WB + cum - side * Q * EP) / (Q * MMR - side * Q), in the bracket that contains the
    position's notional at that price."""
    for row in rows:
        mmr = row["maintenanceMarginRate"]
        cum = float(row["info"]["cum"])
        price = (wallet + cum - side * quantity * entry) / (quantity * mmr - side * quantity)
        notional = quantity * price
        above_floor = notional >= row["minNotional"] or row is rows[0]
        below_cap = notional < row["maxNotional"] or row is rows[-1]
        if above_floor and below_cap:
            return price
    raise AssertionError("no bracket contains the liquidation price")


def test_a_thousand_random_isolated_positions_liquidate_at_the_published_price() -> None:
    rng = np.random.Generator(np.random.PCG64(20261201))
    tiers = shipped_tiers()
    checked = 0
    for symbol, rows in tiers.items():
        for k, row in enumerate(rows):
            for _ in range(26):
                side = 1 if rng.random() < 0.5 else -1
                leverage = float(rng.integers(1, 126))
                entry = float(rng.uniform(0.05, 80_000.0))
                low, high = row["minNotional"], row["maxNotional"]
                notional = float(rng.uniform(low, high)) if k else float(rng.uniform(10.0, high))
                quantity = notional / entry
                instrument = Instrument(symbol, kind="perpetual", leverage=leverage)
                tiered = Instrument(symbol, kind="perpetual", margin_tiers=margin_tiers(rows))
                account = MarginAccount({symbol: instrument}, 1e12)
                account.book_fill(symbol, side > 0, quantity, entry, 0.0)
                # Risk keeps leverage within each bracket's cap; the formula holds at any leverage.
                account.positions[symbol].instrument = tiered
                wallet = account.positions[symbol].margin
                assert wallet == pytest.approx(notional / leverage, rel=1e-12)
                got = account.liquidation_price(symbol, {symbol: entry})
                expected = published_liquidation_price(rows, side, quantity, entry, wallet)
                assert got == pytest.approx(expected, rel=1e-12, abs=1e-12), (symbol, k, side)
                checked += 1
    assert checked >= 1_000


def test_the_worked_example_of_the_adr() -> None:
    rows = shipped_tiers()["XRP/USDT:USDT"]
    xrp = Instrument("XRP/USDT:USDT", leverage=10, margin_tiers=margin_tiers(rows))
    account = MarginAccount({xrp.symbol: xrp}, 5_000.0)
    account.book_fill(xrp.symbol, True, 10_000.0, 1.0, 0.0)
    assert account.positions[xrp.symbol].margin == 1_000.0
    price = account.liquidation_price(xrp.symbol, {xrp.symbol: 1.0})
    assert price == pytest.approx(0.904523, abs=5e-7)
    # There the position's margin plus its loss is exactly its maintenance margin.
    assert price is not None
    left = 1_000.0 + 10_000.0 * (price - 1.0)
    assert left == pytest.approx(account.maintenance_margin(xrp.symbol, price), rel=1e-12)


def test_a_long_at_leverage_one_is_never_liquidated() -> None:
    btc = Instrument("BTC/USDT:USDT")
    account = MarginAccount({btc.symbol: btc}, 100_000.0)
    account.book_fill(btc.symbol, True, 1.0, 60_000.0, 0.0)
    price = account.liquidation_price(btc.symbol, {btc.symbol: 60_000.0})
    assert price is not None and price <= 0.0


def test_leverage_above_the_first_brackets_maximum_is_refused() -> None:
    rows = shipped_tiers()["XRP/USDT:USDT"]
    with pytest.raises(InstrumentError, match="leverage 80 is above the maximum 75"):
        Instrument("XRP/USDT:USDT", leverage=80, margin_tiers=margin_tiers(rows))
    for bad in (0.0, -2.0, float("nan")):
        with pytest.raises(InstrumentError, match="leverage must be > 0"):
            Instrument("XRP/USDT:USDT", leverage=bad)
