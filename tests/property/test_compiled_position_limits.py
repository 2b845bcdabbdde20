"""The compiled order path with max-position limits that deny (the position's quantity or notional
after an entry above the limit) gives the event-driven modes' result bit for bit (limits that cap
orders: `test_compiled_capping.py`)."""

from __future__ import annotations

from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from backtester import Backtest, Instrument
from backtester.execution.fees import FixedRateFee
from backtester.strategies import SmaCross
from tests.property._identity import (
    assert_identical,
    in_every_mode,
    in_every_mode_or_handed_back,
)
from tests.property._scripted import scripted, with_signal
from tests.property.test_signal_mode import long_rows


@settings(max_examples=60, deadline=None)
@given(
    with_signal(long_rows()),
    st.sampled_from(
        [
            Instrument("BTC/USDT"),
            Instrument("BTC/USDT", lot_size=0.01),
            Instrument("BTC/USDT:USDT", leverage=3.0, margin_mode="isolated"),
            Instrument("BTC/USDT:USDT", leverage=2.0, contract_size=0.5, margin_mode="isolated"),
        ]
    ),
    st.sampled_from([None, 0.5, 4.0, 9.0, 20.0]),
    st.sampled_from([None, 300.0, 950.0, 2_500.0]),
    st.sampled_from([0.0, 0.001]),
    st.sampled_from([1.0, 0.5]),
    st.sampled_from([1.0, 0.5]),
    st.booleans(),
)
def test_compiled_runs_with_position_limits_equal_the_event_driven_modes(
    rows_and_signal: tuple[list[Any], list[int]],
    instrument: Instrument,
    max_quantity: float | None,
    max_notional: float | None,
    fee: float,
    entry: float,
    exit_: float,
    trade_on_close: bool,
) -> None:
    rows, signal = rows_and_signal
    params = {"signal": signal, "entry": entry, "exit": exit_, "short": instrument.is_contract}
    run = scripted(
        rows,
        params,
        fees=FixedRateFee(rate=fee),
        instrument=instrument,
        trade_on_close=trade_on_close,
        max_position_quantity=max_quantity,
        max_position_notional=max_notional,
    )
    results = in_every_mode_or_handed_back(run, "resting")
    if isinstance(results, str):
        event("a remainder would rest: the event path")
        return
    denied = results["dense"].orders.filter(code="max_position").height
    event(f"max-position denials: {denied > 0}")
    assert_identical(results)


def test_compiled_sma_cross_with_a_position_limit_equals_the_event_modes_on_real_data() -> None:
    # All-in entries of 100,000 buy 1.37 to 1.64 BTC over the month: a limit of 1.5 denies some.
    data = "golden/data/binance_BTC-USDT_1m.parquet"
    knobs: dict[str, Any] = {"cash": 100_000.0, "fee_rate": 0.001, "max_position_quantity": 1.5}
    results = in_every_mode(
        lambda mode: Backtest(data, SmaCross, mode=mode, **knobs).run(fast=10, slow=30)
    )
    orders = results["dense"].orders
    denied = orders.filter(code="max_position")
    assert denied.height > 10
    assert orders.filter(status="filled").height > 100
    assert denied["reason"][0].startswith("position would be ")
    assert_identical(results)
