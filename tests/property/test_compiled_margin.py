"""The compiled order path on perpetuals (isolated margin, long and short, leverage, contract sizes,
brackets, funding, mark prices, liquidation) gives the event-driven modes' result bit for bit; where
a fill would leave a remainder resting for later bars it hands the run back, and `auto` then gives
the dense result."""

from __future__ import annotations

import math
from typing import Any

import polars as pl
from hypothesis import event, given, settings
from hypothesis import strategies as st

from backtester import Backtest, FixedBpsSlippage, Instrument
from backtester.domain.instrument import MarginTier
from backtester.execution.fees import FixedRateFee, MakerTakerFee
from backtester.execution.slippage import NoSlippage
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
from tests.property.test_signal_mode import long_rows

BRACKETS = (
    MarginTier(max_notional=600.0, maintenance_rate=0.01, max_leverage=25.0),
    MarginTier(
        max_notional=math.inf,
        maintenance_rate=0.025,
        maintenance_amount=9.0,
        max_leverage=4.0,
        min_notional=600.0,
    ),
)


perpetuals = perpetual_instruments(
    "isolated", BRACKETS, [1.0, 2.0, 5.0, 20.0], min_notional=[None, 150.0]
)


@settings(max_examples=120, deadline=None)
@given(
    with_signal_and_funding(long_rows()),
    perpetuals,
    st.one_of(
        st.builds(FixedRateFee, rate=st.sampled_from([0.0, 0.0005, 0.01])),
        st.builds(MakerTakerFee, maker=st.just(0.0002), taker=st.sampled_from([0.0, 0.0004])),
    ),
    st.one_of(st.just(NoSlippage()), st.builds(FixedBpsSlippage, bps=st.sampled_from([0, 5, 50]))),
    st.sampled_from([None, 1.0, 1.002]),
    st.sampled_from([1.0, 0.5]),
    st.sampled_from([1.0, 0.5]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_compiled_perpetual_runs_equal_the_event_driven_modes(
    case: tuple[list[Any], list[int], pl.DataFrame],
    instrument: Instrument,
    fees: Any,
    slippage: Any,
    mark_skew: float | None,
    entry: float,
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
        fees=fees,
        slippage=slippage,
        trade_on_close=trade_on_close,
    )
    params = {"signal": signal, "entry": entry, "exit": exit_, "short": short}
    results = in_every_mode_or_handed_back(scripted(rows, params, **knobs), "resting")
    if isinstance(results, str):
        event("handed back to the event path")
        return
    dense = results["dense"]
    event(f"compiled; shorted: {bool((dense.trades['side'] == 'short').any())}")
    event(
        f"funding paid: {dense.funding.height > 0}; leverage denials: {dense.stats['fills'] < dense.stats['orders']}"
    )
    assert_same_as_dense(dense, results, "orders", "fills", "trades", "equity", "funding")


def test_a_short_sma_cross_on_real_perpetual_data_is_compiled_with_its_funding() -> None:
    # The window the shipped futures, mark and funding series all cover (2021-11-17 16:00 to
    # 2021-11-19 10:00).
    bars = pl.read_csv("tests/data/freqtrade_XRP-USDT-USDT_1h_futures.csv").filter(
        pl.col("timestamp_ms").is_between(1_637_164_800_000, 1_637_316_000_000, closed="left")
    )
    knobs: dict[str, Any] = {
        "instrument": Instrument("XRP/USDT:USDT", leverage=2.0, margin_mode="isolated"),
        "funding": "tests/data/freqtrade_XRP-USDT-USDT_8h_funding_rate.csv",
        "mark": "tests/data/freqtrade_XRP-USDT-USDT_1h_mark.csv",
        "fee_rate": 0.0004,
    }
    results = in_every_mode(
        lambda mode: Backtest(bars, SmaCross, mode=mode, **knobs).run(fast=2, slow=5, short=True)  # type: ignore[arg-type]
    )
    dense = results["dense"]
    assert dense.stats["short_trades"] >= 3 and dense.funding.height >= 4
    assert_same_as_dense(dense, results, "orders", "funding")
