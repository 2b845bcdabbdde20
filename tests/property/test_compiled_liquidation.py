"""The compiled order path liquidates as the venue does (isolated perpetuals, long and short): the
liquidation price from the brackets, watched over each bar's mark path, the fill at the mark or the
bankruptcy price with the liquidation fee, orders resting on that bar canceled; its results equal
the event-driven modes' bit for bit. The watch's price on a bar equals `orders.touch` on it."""

from __future__ import annotations

import math
from typing import Any

import polars as pl
from hypothesis import event, given, settings
from hypothesis import strategies as st

from backtester import Backtest, FixedBpsSlippage, Instrument
from backtester.domain.instrument import MarginTier
from backtester.domain.touch import reach_price
from backtester.execution.fees import FixedRateFee
from backtester.orders.base import touch
from backtester.strategies import SmaCross
from tests.property._identity import (
    assert_same_as_dense,
    in_every_mode,
    in_every_mode_or_handed_back,
)
from tests.property._scripted import (
    perpetual_instruments,
    perpetual_knobs,
    scripted,
    with_signal_and_funding,
)

BRACKETS = (
    MarginTier(max_notional=2_000.0, maintenance_rate=0.01, max_leverage=50.0),
    MarginTier(
        max_notional=math.inf,
        maintenance_rate=0.05,
        maintenance_amount=80.0,
        max_leverage=20.0,
        min_notional=2_000.0,
    ),
)


@st.composite
def swinging_rows(draw: st.DrawFn) -> list[tuple[float, float, float, float, float]]:
    """Bars that move a few percent, now and then much more: enough to liquidate a leveraged
    position some of the time."""
    rows = []
    price = 100.0
    for _ in range(draw(st.integers(min_value=8, max_value=30))):
        move = draw(st.sampled_from([-12.0, -4.0, -1.5, -0.5, 0.0, 0.5, 1.5, 4.0, 12.0]))
        open_, close = price, max(price + move, 5.0)
        wick = draw(st.sampled_from([0.0, 1.0, 6.0]))
        low = max(min(open_, close) - wick, 1.0)
        rows.append((open_, max(open_, close) + wick, low, close, 1_000.0))
        price = close + draw(st.sampled_from([0.0, 0.0, -3.0, 3.0]))  # a gap at the next open
    return rows


perpetuals = perpetual_instruments(
    "isolated", BRACKETS, [5.0, 10.0, 20.0], liquidation_fee=[0.0, 0.0125]
)


@settings(max_examples=50, deadline=None)
@given(
    with_signal_and_funding(swinging_rows()),
    perpetuals,
    st.sampled_from([0.0, 0.0004]),
    st.sampled_from([0, 20]),
    st.sampled_from([None, 0.99, 1.01]),
    st.sampled_from([1.0, 0.5]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_compiled_liquidations_equal_the_event_driven_modes(
    case: tuple[list[Any], list[int], pl.DataFrame],
    instrument: Instrument,
    fee: float,
    bps: int,
    mark_skew: float | None,
    exit_: float,
    short: bool,
    with_funding: bool,
    trade_on_close: bool,
) -> None:
    rows, signal, funding = case
    knobs = perpetual_knobs(
        rows,
        funding if with_funding else None,
        mark_skew,
        instrument=instrument,
        fees=FixedRateFee(rate=fee),
        slippage=FixedBpsSlippage(bps=bps),
        trade_on_close=trade_on_close,
    )
    params = {"signal": signal, "exit": exit_, "short": short}
    results = in_every_mode_or_handed_back(scripted(rows, params, **knobs), "resting")
    if isinstance(results, str):
        event("a remainder would rest: the event path")
        return
    dense = results["dense"]
    liquidated = dense.stats["liquidations"]
    canceled = dense.orders.filter(reason="position liquidated").height
    event(f"liquidations: {min(liquidated, 2)}; resting orders canceled: {canceled > 0}")
    assert_same_as_dense(dense, results, "orders", "fills", "trades", "equity", "funding")


prices = st.sampled_from([90.0, 95.0, 99.5, 100.0, 100.5, 105.0, 110.0])


@settings(max_examples=200, deadline=None)
@given(prices, prices, prices, prices, prices, st.booleans())
def test_the_watch_price_is_the_touch_of_the_bar_path_in_either_order(
    open_: float, a: float, b: float, close: float, level: float, below: bool
) -> None:
    high, low = max(a, b, open_, close), min(a, b, open_, close)
    for path in ((open_, low, high, close), (open_, high, low, close)):
        at_open = touch(path, level, below, 0.0)
        expected = at_open[1] if at_open is not None and at_open[0] <= 0.0 else math.nan
        assert _same_float(reach_price(open_, high, low, close, level, below, False), expected)
        whole = touch(path, level, below, 0.0)
        expected = whole[1] if whole is not None else math.nan
        assert _same_float(reach_price(open_, high, low, close, level, below, True), expected)


def _same_float(x: float, y: float) -> bool:
    return x == y or (math.isnan(x) and math.isnan(y))


def test_a_stop_and_reverse_sma_cross_at_50x_on_real_perpetual_data_is_liquidated_compiled() -> (
    None
):
    # The golden perp_liquidation market (Binance XRP/USDT:USDT 1h, 50x isolated): its own case runs
    # SmaExtended, an event-driven strategy; SmaCross there is a plan the compiled path runs.
    knobs: dict[str, Any] = {
        "instrument": Instrument("XRP/USDT:USDT", leverage=50.0, margin_mode="isolated"),
        "fee_rate": 0.0004,
    }
    results = in_every_mode(
        lambda mode: Backtest(
            "golden/data/freqtrade_XRP-USDT-USDT_1h_futures.csv", SmaCross, mode=mode, **knobs
        ).run(fast=2, slow=5, short=True)
    )
    dense = results["dense"]
    assert dense.stats["liquidations"] == 2
    assert dense.orders.filter(reason="position liquidated").height == 2
    assert dense.trades["liquidated"].sum() == 2
    assert_same_as_dense(dense, results, "orders", "fills", "trades")
