"""The compiled order path with max-position limits that cap orders (`on_limit = "cap"`: an entry
that would cross a limit is cut to the room left, as a quantity order) and with fills the account
can pay for only in part (the venue fills what it can and cancels the rest) gives the event-driven
modes' result bit for bit."""

from __future__ import annotations

from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from backtester import Backtest, FixedBpsSlippage, Instrument, RunResult
from backtester.execution.fees import FixedRateFee
from backtester.strategies import SmaCross
from tests.engine_support import bars_frame
from tests.property._identity import (
    assert_identical,
    in_every_mode,
    in_every_mode_or_handed_back,
)
from tests.property._scripted import Scripted, scripted, with_signal
from tests.property.test_signal_mode import long_rows


@settings(max_examples=60, deadline=None)
@given(
    with_signal(long_rows()),
    st.sampled_from(
        [
            Instrument("BTC/USDT"),
            Instrument("BTC/USDT", tick_size=0.5, lot_size=0.01, min_notional=50.0),
            Instrument("BTC/USDT:USDT", leverage=3.0, margin_mode="isolated"),
            Instrument("BTC/USDT:USDT", leverage=5.0, contract_size=0.5, margin_mode="isolated"),
        ]
    ),
    st.sampled_from([None, 0.5, 4.0, 9.0, 20.0]),
    st.sampled_from([None, 300.0, 950.0, 2_500.0]),
    st.sampled_from([0.0, 0.001]),
    st.sampled_from([0, 30]),
    st.sampled_from([1.0, 0.5]),
    st.booleans(),
)
def test_compiled_runs_with_capping_limits_equal_the_event_driven_modes(
    rows_and_signal: tuple[list[Any], list[int]],
    instrument: Instrument,
    max_quantity: float | None,
    max_notional: float | None,
    fee: float,
    bps: int,
    exit_: float,
    trade_on_close: bool,
) -> None:
    rows, signal = rows_and_signal
    params = {"signal": signal, "exit": exit_, "short": instrument.is_contract}
    run = scripted(
        rows,
        params,
        fees=FixedRateFee(rate=fee),
        slippage=FixedBpsSlippage(bps=bps),
        instrument=instrument,
        trade_on_close=trade_on_close,
        max_position_quantity=max_quantity,
        max_position_notional=max_notional,
        on_limit="cap",
    )
    results = in_every_mode_or_handed_back(run, "resting")
    if isinstance(results, str):
        event("a remainder would rest: the event path")
        return
    orders = results["dense"].orders
    capped = orders.filter(orders["quantity"].is_not_null() & (orders["tag"] != "liquidation"))
    event(f"capped orders: {capped.height > 0}")
    event(
        f"partly filled at the fill: {orders.filter(reason='insufficient margin at fill').height > 0 or orders.filter(reason='insufficient cash at fill').height > 0}"
    )
    event(f"denied at the limit: {orders.filter(code='max_position').height > 0}")
    assert_identical(results)


def test_compiled_sma_cross_with_a_capping_position_limit_equals_the_event_modes_on_real_data() -> (
    None
):
    # All-in entries of 100,000 buy 1.37 to 1.64 BTC over the month: a limit of 1.5 cuts some.
    data = "golden/data/binance_BTC-USDT_1m.parquet"
    knobs: dict[str, Any] = {
        "cash": 100_000.0,
        "fee_rate": 0.001,
        "max_position_quantity": 1.5,
        "on_limit": "cap",
    }
    results = in_every_mode(
        lambda mode: Backtest(data, SmaCross, mode=mode, **knobs).run(fast=10, slow=30)
    )
    fills = results["dense"].fills
    assert (fills["quantity"] == 1.5).sum() > 10
    assert fills["quantity"].max() == 1.5
    assert_identical(results)


def test_a_capped_entry_the_cash_pays_for_only_in_part_fills_in_part_compiled() -> None:
    # Cut to 9.5 units at the close of 100; the next bar opens at 110, where the cash buys less:
    # the venue fills what it can and cancels the rest.
    rows = [(100.0, 100.0, 100.0, 100.0, 10.0), *[(110.0, 111.0, 109.0, 110.0, 10.0)] * 3]

    def run(mode: str) -> RunResult:
        return Backtest(
            bars_frame(rows),
            Scripted,
            cash=1_000.0,
            max_position_notional=950.0,
            on_limit="cap",
            mode=mode,
        ).run(signal=[1, 0, 0, 0])

    results = in_every_mode(run)
    order = results["dense"].orders.row(0, named=True)
    assert (order["quantity"], order["status"]) == (9.5, "canceled")
    assert order["reason"] == "insufficient cash at fill"
    assert 0.0 < order["filled_quantity"] < 9.5
    assert results["dense"].fills["leaves_quantity"][0] > 0.0
    assert_identical(results)
