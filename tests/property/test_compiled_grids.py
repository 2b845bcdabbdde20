"""The compiled order path on instruments with tick and lot grids (prices rounded to the tick, sizes
floored to the lot, both as the nearest float to the exact decimal grid point) and notional limits
gives the event-driven modes' result bit for bit, on spot and on perpetuals, on random data and on
real data with Binance's grids."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from backtester import Backtest, FixedBpsSlippage, Instrument
from backtester.domain import grid
from backtester.execution.fees import FixedRateFee, MakerTakerFee
from backtester.execution.slippage import NoSlippage
from backtester.strategies import SmaCross
from tests.property._identity import (
    assert_identical,
    in_every_mode,
    in_every_mode_or_handed_back,
)
from tests.property._scripted import scripted, with_signal
from tests.property.test_signal_mode import long_rows

STEPS = [1e-8, 1e-5, 0.001, 0.01, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 10.0, 0.00025]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(STEPS),
    st.one_of(st.integers(0, 10**6), st.integers(0, 2**51 // 10**8)),
)
def test_a_grid_point_is_the_float_nearest_the_exact_decimal_product(
    step: float, steps: int
) -> None:
    scale = grid.step_scale(step)
    exact = Decimal(steps) * Decimal(repr(step))
    assert grid.grid_point(steps, step, scale) == float(exact)
    value = float(exact)
    assert grid.nearest_on_grid(value, step, scale) == value
    if steps <= 10**6:
        # The floor's tolerance is a billionth of a step: enough for a million steps.
        assert grid.floor_on_grid(value, step, scale) == value


def test_a_sum_of_lots_floors_to_itself() -> None:
    scale = grid.step_scale(0.1)
    assert grid.floor_on_grid(0.1 + 0.2, 0.1, scale) == 0.3
    assert grid.floor_on_grid(0.3, 0.1, scale) == 0.3  # 0.3 / 0.1 = 2.9999999999999996
    assert grid.nearest_on_grid(100.0 * 1.0005, 0.01, grid.step_scale(0.01)) == 100.05


def gridded(perpetual: bool) -> st.SearchStrategy[Instrument]:
    symbol = "BTC/USDT:USDT" if perpetual else "BTC/USDT"
    return st.builds(
        lambda tick, lot, limits, leverage, size: Instrument(
            symbol,
            tick_size=tick,
            lot_size=lot,
            min_notional=limits[0],
            max_notional=limits[1],
            **(
                {"leverage": leverage, "contract_size": size, "margin_mode": "isolated"}
                if perpetual
                else {}
            ),
        ),
        st.sampled_from([None, 0.01, 0.25, 0.3, 1.0, 0.7]),
        st.sampled_from([None, 1e-5, 0.001, 0.01, 0.1, 0.3, 1.0]),
        st.sampled_from([(None, None), (5.0, None), (150.0, 2_000.0), (None, 600.0)]),
        st.sampled_from([1.0, 2.0, 5.0]),
        st.sampled_from([1.0, 0.5]),
    )


@settings(max_examples=80, deadline=None)
@given(
    with_signal(long_rows()),
    st.booleans().flatmap(lambda perpetual: st.tuples(st.just(perpetual), gridded(perpetual))),
    st.one_of(
        st.builds(FixedRateFee, rate=st.sampled_from([0.0, 0.001, 0.01])),
        st.builds(MakerTakerFee, maker=st.just(0.0002), taker=st.sampled_from([0.0, 0.001])),
    ),
    st.one_of(st.just(NoSlippage()), st.builds(FixedBpsSlippage, bps=st.sampled_from([3, 50]))),
    st.sampled_from([1.0, 0.5, 0.3]),
    st.sampled_from([1.0, 0.5, 0.3]),
    st.sampled_from([1_000.0, 250.0]),
    st.booleans(),
)
def test_compiled_runs_on_grids_equal_the_event_driven_modes(
    rows_and_signal: tuple[list[Any], list[int]],
    market: tuple[bool, Instrument],
    fees: Any,
    slippage: Any,
    entry: float,
    exit_: float,
    cash: float,
    trade_on_close: bool,
) -> None:
    rows, signal = rows_and_signal
    perpetual, instrument = market
    params = {"signal": signal, "entry": entry, "exit": exit_, "short": perpetual}
    run = scripted(
        rows,
        params,
        cash=cash,
        fees=fees,
        slippage=slippage,
        instrument=instrument,
        trade_on_close=trade_on_close,
    )
    # A fill that would leave a remainder resting for later bars: the event
    # path makes those runs.
    results = in_every_mode_or_handed_back(run, "resting")
    if isinstance(results, str):
        event("handed back to the event path")
        return
    dense = results["dense"]
    event(f"perpetual: {perpetual}; fills: {dense.fills.height > 0}")
    if dense.fills.height and instrument.lot_size is not None:
        quantities = dense.fills["quantity"].to_numpy()
        on_lot = [instrument.floor_quantity(q) for q in quantities]
        event(f"every fill on the lot grid: {np.array_equal(quantities, on_lot)}")
    assert_identical(results)


@pytest.mark.parametrize(
    ("instrument", "params", "knobs"),
    [
        (
            Instrument("BTC/USDT", tick_size=0.01, lot_size=0.00001, min_notional=5.0),
            {"fast": 10, "slow": 30},
            {"slippage": FixedBpsSlippage(bps=3)},
        ),
        (
            Instrument("BTC/USDT", tick_size=0.1, lot_size=0.001, min_notional=100.0),
            {"fast": 20, "slow": 60},
            {"cash": 1_000.0, "trade_on_close": True},
        ),
    ],
    ids=["binance_spot_grids", "coarse_grids_min_notional"],
)
def test_compiled_sma_cross_on_grids_equals_the_event_driven_modes_on_real_data(
    instrument: Instrument, params: dict[str, Any], knobs: dict[str, Any]
) -> None:
    data = "golden/data/binance_BTC-USDT_1m.parquet"
    settings = {"cash": 100_000.0, "fee_rate": 0.001, "instrument": instrument, **knobs}
    results = in_every_mode(
        lambda mode: Backtest(data, SmaCross, mode=mode, **settings).run(**params)
    )
    fills = results["dense"].fills
    assert fills.height > 100
    quantities = fills["quantity"].to_numpy()
    assert np.array_equal(quantities, [instrument.floor_quantity(q) for q in quantities])
    prices = fills["price"].to_numpy()
    assert np.array_equal(prices, [instrument.round_price(p) for p in prices])
    assert_identical(results)
