"""A dated future trades until its expiry and then settles at the last mark: the position closes
at the settlement price without a fee, later orders are denied, and signal mode sees it as dense
mode does. Inverse (coin-margined) contracts are refused with the reason."""

from __future__ import annotations

import math

import pytest

from backtester import Backtest, Instrument
from backtester.domain.instrument import InstrumentKind
from backtester.engine import SetupError
from backtester.strategies import SmaCross
from tests.engine_support import BAR_MS, T0_MS, bars_frame, scripted


def bar(price: float) -> tuple[float, float, float, float, float]:
    return (price, price + 1.0, price - 1.0, price, 10.0)


def future(expiry_bar: int, leverage: float = 2.0) -> Instrument:
    """A future expiring when bar `expiry_bar - 1` closes."""
    return Instrument(
        "BTC/USDT:USDT",
        kind=InstrumentKind.FUTURE,
        expiry=T0_MS + expiry_bar * BAR_MS,
        leverage=leverage,
    )


def test_a_long_held_to_expiry_settles_at_the_last_mark_and_later_orders_are_denied() -> None:
    prices = [100.0, 102.0, 104.0, 106.0, 108.0, 110.0, 112.0, 114.0]
    script = {0: [lambda s: s.buy(fraction=0.5)], 6: [lambda s: s.buy(fraction=0.5)]}
    result = Backtest(
        bars_frame([bar(p) for p in prices]),
        scripted(script),
        cash=1_000,
        fee_rate=0.001,
        instrument=future(expiry_bar=5),
    ).run()
    entry, settlement = result.fills.to_dicts()
    assert (entry["side"], entry["price"]) == ("buy", 102.0)  # the next bar's open
    # Settled at the close of the last bar before the expiry (no mark series: the last price).
    assert (settlement["side"], settlement["price"], settlement["fee"]) == ("sell", 108.0, 0.0)
    assert settlement["tag"] == "settlement"
    assert settlement["quantity"] == entry["quantity"]
    (trade,) = result.trades.to_dicts()
    assert trade["pnl"] == pytest.approx((108.0 - 102.0) * entry["quantity"] - entry["fee"])
    denied = result.orders.filter(result.orders["status"] == "denied")
    assert denied.height == 1 and "expired" in denied["reason"][0]
    assert result.equity["equity"][-1] == pytest.approx(1_000.0 + trade["pnl"])


def test_data_that_ends_before_the_expiry_settles_nothing() -> None:
    rows = [bar(100.0 + i) for i in range(6)]
    script = {0: [lambda s: s.buy(fraction=0.5)]}
    result = Backtest(
        bars_frame(rows), scripted(script), cash=1_000, instrument=future(expiry_bar=60)
    ).run()
    assert "settlement" not in result.fills["tag"].to_list()


def test_signal_mode_settles_a_future_as_dense_mode_does() -> None:
    rows = [bar(100.0 + 10.0 * math.sin(i / 5.0)) for i in range(120)]
    runs = {
        mode: Backtest(
            bars_frame(rows), SmaCross, cash=1_000, instrument=future(90), mode=mode
        ).run(fast=3, slow=8, short=True)
        for mode in ("dense", "signal")
    }
    assert "settlement" in runs["dense"].fills["tag"].to_list()
    assert runs["signal"].digest == runs["dense"].digest


def test_an_inverse_contract_is_refused_with_the_reason() -> None:
    inverse = Instrument("BTC/USD:BTC", contract_size=100.0, linear=False)
    with pytest.raises(SetupError, match=r"inverse \(coin-margined\) contracts are not supported"):
        Backtest(bars_frame([bar(100.0)] * 5), SmaCross, instrument=inverse).run(fast=2, slow=3)
