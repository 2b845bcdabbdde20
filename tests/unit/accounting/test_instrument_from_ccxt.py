"""`Instrument.from_ccxt`: ccxt's own parse of recorded Binance exchangeInfo rows (no HTTP) and the
shipped leverage tiers, into grids, limits, contract terms and maintenance brackets."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import ccxt
import pytest

from backtester.accounting.accounts import MarginAccount
from backtester.domain.instrument import (
    DEFAULT_LIQUIDATION_FEE,
    Instrument,
    InstrumentError,
    InstrumentKind,
    MarginMode,
)

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "fixtures"
TIERS: dict[str, list[dict[str, Any]]] = json.loads(
    (FIXTURES / "ccxt_binance_leverage_tiers_subset.json").read_text()
)
FAPI = json.loads((FIXTURES / "binance_fapi_exchangeInfo_subset.json").read_text())


def ccxt_markets() -> dict[str, dict[str, Any]]:
    """The markets ccxt 4.5 makes of the recorded USDⓈ-M rows (its `parse_market`, as
    `load_markets` calls it)."""
    exchange = ccxt.binance()
    markets = [exchange.parse_market(row) for row in FAPI["symbols"]]
    return {market["symbol"]: market for market in markets}


MARKETS = ccxt_markets()


def test_a_perpetual_gets_its_grids_limits_fee_and_every_bracket() -> None:
    xrp = Instrument.from_ccxt(MARKETS["XRP/USDT:USDT"], TIERS["XRP/USDT:USDT"], leverage=5)
    assert (xrp.kind, xrp.base, xrp.quote, xrp.settle) == (
        InstrumentKind.PERPETUAL,
        "XRP",
        "USDT",
        "USDT",
    )
    assert (xrp.contract_size, xrp.linear, xrp.expiry) == (1.0, True, None)
    assert (xrp.tick_size, xrp.lot_size) == (0.0001, 0.1)
    assert (xrp.min_quantity, xrp.max_quantity) == (0.1, 10_000_000.0)
    assert (xrp.min_notional, xrp.max_notional) == (5.0, None)
    assert xrp.liquidation_fee == 0.015
    assert xrp.leverage == 5.0 and isinstance(xrp.leverage, float)
    assert xrp.margin_mode is MarginMode.ISOLATED
    rows = TIERS["XRP/USDT:USDT"]
    assert len(xrp.margin_tiers) == len(rows)
    for tier, row in zip(xrp.margin_tiers, rows, strict=True):
        assert tier.min_notional == row["minNotional"]
        assert tier.max_notional == row["maxNotional"]
        assert tier.maintenance_rate == row["maintenanceMarginRate"]
        assert tier.maintenance_amount == float(row["info"]["cum"])
        assert tier.max_leverage == row["maxLeverage"]


@pytest.mark.parametrize("symbol", sorted(TIERS))
def test_without_binance_cum_the_maintenance_amount_keeps_margin_continuous(symbol: str) -> None:
    """Exchanges other than Binance send no `cum`: the amount that makes maintenance margin
    continuous at each bracket floor is what Binance publishes."""
    rows = [{k: v for k, v in row.items() if k != "info"} for row in TIERS[symbol]]
    derived = Instrument.from_ccxt(MARKETS[symbol], rows).margin_tiers
    published = Instrument.from_ccxt(MARKETS[symbol], TIERS[symbol]).margin_tiers
    for mine, theirs in zip(derived, published, strict=True):
        assert mine.maintenance_amount == pytest.approx(theirs.maintenance_amount, rel=1e-12)
    for lower, upper in itertools.pairwise(derived):
        at_floor = upper.min_notional
        below = at_floor * lower.maintenance_rate - lower.maintenance_amount
        above = at_floor * upper.maintenance_rate - upper.maintenance_amount
        assert below == pytest.approx(above, rel=1e-12)


def test_tiers_arrive_in_any_order_and_are_sorted_by_floor() -> None:
    rows = list(reversed(TIERS["BTC/USDT:USDT"]))
    tiers = Instrument.from_ccxt(MARKETS["BTC/USDT:USDT"], rows).margin_tiers
    assert [t.min_notional for t in tiers] == sorted(t.min_notional for t in tiers)


def test_a_dated_future_expires_when_ccxt_says() -> None:
    future = Instrument.from_ccxt(MARKETS["BTC/USDT:USDT-240628"])
    assert future.kind is InstrumentKind.FUTURE
    assert future.expiry == 1_719_561_600_000  # 2024-06-28 08:00 UTC
    assert future.liquidation_fee == 0.01
    assert future.margin_tiers == ()


def test_a_spot_market_has_no_contract_terms() -> None:
    # load_markets fills these from margin endpoints before it parses spot rows.
    exchange = ccxt.binance(
        {"options": {"crossMarginPairsData": [], "isolatedMarginPairsData": []}}
    )
    raw = {
        "symbol": "BTCUSDT",
        "status": "TRADING",
        "baseAsset": "BTC",
        "quoteAsset": "USDT",
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN"]],
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.01",
                "maxPrice": "1000000",
                "tickSize": "0.01",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00001",
                "maxQty": "9000",
                "stepSize": "0.00001",
            },
            {"filterType": "NOTIONAL", "minNotional": "5", "maxNotional": "9000000"},
        ],
    }
    spot = Instrument.from_ccxt(exchange.parse_market(raw))
    assert spot.kind is InstrumentKind.SPOT and not spot.is_contract
    assert (spot.symbol, spot.settle, spot.contract_size, spot.leverage) == (
        "BTC/USDT",
        "USDT",
        1.0,
        1.0,
    )
    assert (spot.tick_size, spot.lot_size, spot.min_quantity) == (0.01, 0.00001, 0.00001)
    assert spot.liquidation_fee == DEFAULT_LIQUIDATION_FEE


def market(**changes: Any) -> dict[str, Any]:
    base = dict(MARKETS["XRP/USDT:USDT"])
    base.update(changes)
    return base


def test_an_inverse_contract_is_built_with_its_contract_size() -> None:
    inverse = Instrument.from_ccxt(
        market(symbol="BTC/USD:BTC", settle="BTC", contractSize=100.0, linear=False, inverse=True)
    )
    assert (inverse.linear, inverse.contract_size, inverse.settle) == (False, 100.0, "BTC")
    assert not Instrument.from_ccxt(market(linear=None, inverse=True)).linear


def test_decimal_place_precision_and_absent_limits() -> None:
    limits = {"amount": {"min": 0.0, "max": None}, "cost": {"min": None, "max": 0}}
    built = Instrument.from_ccxt(
        market(precision={"price": 4, "amount": 1}, limits=limits, info={}),
        precision_mode="decimal_places",
    )
    assert (built.tick_size, built.lot_size) == (0.0001, 0.1)
    assert (built.min_quantity, built.max_quantity, built.min_notional, built.max_notional) == (
        None,
        None,
        None,
        None,
    )
    assert built.liquidation_fee == DEFAULT_LIQUIDATION_FEE


def test_what_cannot_be_an_instrument_is_refused_naming_the_market() -> None:
    with pytest.raises(InstrumentError, match=r"BTC/USD:BTC-240628-60000-C: .*type 'option'"):
        Instrument.from_ccxt(market(symbol="BTC/USD:BTC-240628-60000-C", type="option"))
    with pytest.raises(InstrumentError, match="leverage 100 is above the maximum 75"):
        Instrument.from_ccxt(MARKETS["XRP/USDT:USDT"], TIERS["XRP/USDT:USDT"], leverage=100)
    broken = [{"minNotional": 0.0, "maxNotional": 10.0, "maxLeverage": 20.0}]
    with pytest.raises(InstrumentError, match="leverage tier 1 is not ccxt's shape"):
        Instrument.from_ccxt(MARKETS["XRP/USDT:USDT"], broken)


def test_the_last_bracket_without_a_cap_extends_without_bound() -> None:
    rows = [dict(row) for row in TIERS["LINK/USDT:USDT"]]
    rows[-1] = {**rows[-1], "maxNotional": None}
    assert math.isinf(
        Instrument.from_ccxt(MARKETS["LINK/USDT:USDT"], rows).margin_tiers[-1].max_notional
    )


def test_kind_and_margin_mode_given_as_strings_are_their_members() -> None:
    # The accounts compare with `is`: a string left as given would book an isolated position as
    # cross.
    perp = Instrument("BTC/USDT:USDT", kind="perpetual", margin_mode="isolated")  # type: ignore[arg-type]
    assert perp.kind is InstrumentKind.PERPETUAL
    assert perp.margin_mode is MarginMode.ISOLATED
    assert MarginAccount({perp.symbol: perp}, 100.0).is_isolated(perp.symbol)
    with pytest.raises(
        InstrumentError, match="margin_mode must be one of isolated, cross, got 'x'"
    ):
        Instrument("BTC/USDT:USDT", margin_mode="x")  # type: ignore[arg-type]
