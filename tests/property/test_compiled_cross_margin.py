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

from backtester import Backtest, FixedBpsSlippage, Instrument, RunResult
from backtester.engine import SetupError
from backtester.execution.fees import FixedRateFee
from backtester.strategies import SmaCross
from tests.engine_support import bars_frame
from tests.property._identity import assert_same_as_dense
from tests.property.test_compiled_liquidation import BRACKETS, SYMBOL, swinging_rows
from tests.property.test_compiled_margin import Scripted, marks_for
from tests.property.test_perpetual_runs import funding_series

cross_perpetuals = st.builds(
    lambda leverage, size, tiers, fee: Instrument(
        SYMBOL,
        leverage=leverage,
        margin_mode="cross",
        contract_size=size,
        margin_tiers=BRACKETS if tiers else (),
        liquidation_fee=fee,
    ),
    st.sampled_from([2.0, 5.0, 10.0, 20.0]),
    st.sampled_from([1.0, 0.5]),
    st.booleans(),
    st.sampled_from([0.0, 0.0125]),
)


@settings(max_examples=80, deadline=None)
@given(
    swinging_rows().flatmap(
        lambda rows: st.tuples(
            st.just(rows),
            st.lists(st.sampled_from([-1, 0, 0, 1]), min_size=len(rows), max_size=len(rows)),
            funding_series(len(rows)),
        )
    ),
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
    knobs: dict[str, Any] = {
        "instrument": instrument,
        "fees": FixedRateFee(rate=fee),
        "slippage": FixedBpsSlippage(bps=bps),
        "trade_on_close": trade_on_close,
    }
    if with_funding:
        knobs["funding"] = funding
    if mark_skew is not None:
        knobs["mark"] = marks_for(rows, mark_skew)
    params = {"signal": signal, "entry": entry, "exit": exit_, "short": short}

    def run(mode: str) -> RunResult:
        return Backtest(bars_frame(rows), Scripted, cash=1_000.0, mode=mode, **knobs).run(**params)  # type: ignore[arg-type]

    dense = run("dense")
    try:
        compiled = run("compiled")
    except SetupError as declined:
        assert "resting" in str(declined), str(declined)
        event("a remainder would rest: the event path")
        assert run("auto").digest == dense.digest
        assert run("signal").digest == dense.digest
        return
    results = {"compiled": compiled, "signal": run("signal")}
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
    instrument = Instrument(SYMBOL, leverage=2.0, margin_mode="cross")
    results = {
        mode: Backtest(
            bars_frame(rows),
            Scripted,
            cash=1_000.0,
            mode=mode,
            instrument=instrument,
            fee_rate=4e-4,
        ).run(signal=[0, 0, 0, 1, 0, 0, 0])
        for mode in ("dense", "signal", "compiled")
    }
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
    results = {
        mode: Backtest(
            "golden/data/freqtrade_XRP-USDT-USDT_1h_futures.csv", SmaCross, mode=mode, **knobs
        ).run(fast=2, slow=5, short=True)
        for mode in ("dense", "signal", "compiled")
    }
    dense = results["dense"]
    assert dense.stats["liquidations"] >= 1
    assert_same_as_dense(dense, results, "orders", "fills", "trades")
