"""The compiled order path on a cross-margin perpetual (one stream): buying power with the
position's unrealized profit at the mark the risk engine and the venue know, funding out of the
wallet only, and the liquidation when the account's equity no longer covers the maintenance margin,
priced and charged from the whole wallet. Its results, and signal mode's, equal dense mode's bit for
bit: signal mode visits every bar while a cross position is open, since its mark is read on each."""

from __future__ import annotations

from typing import Any

import polars as pl
from hypothesis import event, given, settings
from hypothesis import strategies as st

from backtester import Backtest, FixedBpsSlippage, Instrument
from backtester.execution.fees import FixedRateFee
from backtester.strategies import SmaCross
from tests.property._identity import (
    assert_same_as_dense,
    in_every_mode,
    in_every_mode_or_handed_back,
)
from tests.property._scripted import (
    PERPETUAL,
    perpetual_instruments,
    perpetual_knobs,
    scripted,
    with_signal_and_funding,
)
from tests.property.test_compiled_liquidation import BRACKETS, swinging_rows

cross_perpetuals = perpetual_instruments(
    "cross", BRACKETS, [2.0, 5.0, 10.0, 20.0], liquidation_fee=[0.0, 0.0125]
)


@settings(max_examples=80, deadline=None)
@given(
    with_signal_and_funding(swinging_rows()),
    cross_perpetuals,
    st.sampled_from([0.0, 0.0004]),
    st.sampled_from([0, 20]),
    st.sampled_from([None, 0.99, 1.01]),
    st.sampled_from([1.0, 0.5]),
    st.sampled_from([1.0, 0.5]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_compiled_cross_margin_runs_equal_dense_mode(
    case: tuple[list[Any], list[int], pl.DataFrame],
    instrument: Instrument,
    fee: float,
    bps: int,
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
        fees=FixedRateFee(rate=fee),
        slippage=FixedBpsSlippage(bps=bps),
        trade_on_close=trade_on_close,
    )
    params = {"signal": signal, "entry": entry, "exit": exit_, "short": short}
    results = in_every_mode_or_handed_back(scripted(rows, params, **knobs), "resting")
    if isinstance(results, str):
        event("a remainder would rest: the event path")
        return
    dense = results["dense"]
    event(
        f"liquidations: {min(dense.stats['liquidations'], 2)}; funding: {dense.funding.height > 0}"
    )
    assert_same_as_dense(dense, results, "orders", "fills", "trades", "equity", "funding")


def test_signal_mode_reads_the_marks_dense_mode_reads_on_a_cross_account() -> None:
    # A long fills at bar 4's open; dense mode first prices its liquidation at bar 5's mark (the
    # wallet as cross equity less the position's profit, which rounds differently at each mark),
    # so a signal mode that skipped bar 5 would liquidate on bar 6 at a price an ulp off.
    rows = [
        (100.0, 102.5, 99.0, 101.5, 1_000.0),
        (101.5, 119.5, 95.5, 113.5, 1_000.0),
        (116.5, 117.0, 116.5, 117.0, 1_000.0),
        (114.0, 115.0, 109.0, 110.0, 1_000.0),
        (107.0, 117.0, 101.0, 111.0, 1_000.0),
        (108.0, 113.0, 107.0, 112.0, 1_000.0),
        (112.0, 112.0, 40.0, 45.0, 1_000.0),
    ]
    instrument = Instrument(PERPETUAL, leverage=2.0, margin_mode="cross")
    results = in_every_mode(
        scripted(rows, {"signal": [0, 0, 0, 1, 0, 0, 0]}, instrument=instrument, fee_rate=4e-4)
    )
    dense = results["dense"]
    assert dense.stats["liquidations"] == 1
    assert dense.fills["price"].to_list() == [107.0, 53.714859437751]
    for mode, result in results.items():
        assert result.digest == dense.digest, mode
        assert result.fills.equals(dense.fills), mode


def test_a_stop_and_reverse_sma_cross_at_50x_cross_margin_on_real_data_is_compiled() -> None:
    knobs: dict[str, Any] = {
        "instrument": Instrument("XRP/USDT:USDT", leverage=50.0, margin_mode="cross"),
        "fee_rate": 0.0004,
    }
    results = in_every_mode(
        lambda mode: Backtest(
            "golden/data/freqtrade_XRP-USDT-USDT_1h_futures.csv", SmaCross, mode=mode, **knobs
        ).run(fast=2, slow=5, short=True)
    )
    dense = results["dense"]
    assert dense.stats["liquidations"] >= 1
    assert_same_as_dense(dense, results, "orders", "fills", "trades")
