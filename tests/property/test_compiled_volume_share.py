"""The compiled order path with volume-share slippage (each bar fills at most its share of the
volume, at a price moved by the share's square) gives the event-driven modes' result bit for bit;
where a bar's share would fill an order only in part, the run is handed to the event path."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from hypothesis import event, given, settings
from hypothesis import strategies as st

from backtester import Backtest, Instrument, VolumeShareSlippage
from backtester.execution.fees import FixedRateFee
from backtester.strategies import SmaCross
from tests.property._identity import (
    assert_identical,
    in_every_mode,
    in_every_mode_or_handed_back,
)
from tests.property._scripted import scripted, with_signal

half_units = st.integers(min_value=160, max_value=240).map(lambda k: k / 2)


@st.composite
def liquid_rows(draw: st.DrawFn) -> list[tuple[float, float, float, float, float]]:
    """Bars with volume enough for most orders, and now and then a thin one."""
    rows = []
    for _ in range(draw(st.integers(min_value=10, max_value=40))):
        open_, close = draw(half_units), draw(half_units)
        up, down = draw(st.sampled_from([0.0, 1.0])), draw(st.sampled_from([0.0, 1.0]))
        volume = draw(st.sampled_from([400.0, 1_000.0, 5_000.0, 50_000.0, 20.0]))
        rows.append((open_, max(open_, close) + up, min(open_, close) - down, close, volume))
    return rows


@settings(max_examples=60, deadline=None)
@given(
    with_signal(liquid_rows()),
    st.builds(
        VolumeShareSlippage,
        volume_limit=st.sampled_from([0.025, 0.1, 1.0]),
        price_impact=st.sampled_from([0.0, 0.1, 0.5]),
    ),
    st.sampled_from(
        [
            Instrument("BTC/USDT"),
            Instrument("BTC/USDT", tick_size=0.01, lot_size=0.001, min_notional=5.0),
            Instrument("BTC/USDT:USDT", leverage=3.0, margin_mode="isolated"),
            Instrument("BTC/USDT:USDT", leverage=2.0, lot_size=0.01, margin_mode="isolated"),
        ]
    ),
    st.sampled_from([0.0, 0.001]),
    st.sampled_from([1.0, 0.5]),
    st.sampled_from([1.0, 0.5]),
    st.booleans(),
)
def test_compiled_runs_with_volume_share_slippage_equal_the_event_driven_modes(
    rows_and_signal: tuple[list[Any], list[int]],
    slippage: VolumeShareSlippage,
    instrument: Instrument,
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
        slippage=slippage,
        instrument=instrument,
        trade_on_close=trade_on_close,
    )
    results = in_every_mode_or_handed_back(run, "volume share", "resting")
    if isinstance(results, str):
        event(
            "volume share binds: the event path"
            if "volume share" in results
            else "a remainder would rest"
        )
        return
    dense = results["dense"]
    event(f"compiled; fills: {dense.fills.height > 0}")
    assert_identical(results)


def test_compiled_sma_cross_with_volume_share_slippage_equals_the_event_modes_on_real_data() -> (
    None
):
    # A thousand dollars is far below a 2.5% share of any minute of this month: nothing rests.
    data = "golden/data/binance_BTC-USDT_1m.parquet"
    knobs: dict[str, Any] = {"cash": 1_000.0, "fee_rate": 0.001, "slippage": VolumeShareSlippage()}
    results = in_every_mode(
        lambda mode: Backtest(data, SmaCross, mode=mode, **knobs).run(fast=10, slow=30)
    )
    fills = results["dense"].fills
    assert fills.height > 100
    bars = pl.read_parquet(data)
    opens = dict(zip(bars["timestamp_ms"].to_list(), bars["open"].to_list(), strict=True))
    at_open = [opens[ms] for ms in fills["ts"].dt.epoch("ms").to_list()]
    moved = fills["price"].to_numpy() != np.array(at_open)
    assert moved.mean() > 0.9  # the impact moved the fills off the open
    assert_identical(results)
