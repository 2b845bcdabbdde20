"""Signal mode (visit only declared active bars and bars where a resting order can fill) gives the same
result, bit for bit, as the dense loop: on random order streams and on the reference strategies with
stop-loss/take-profit, partial fills and several datasets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtester import (
    Backtest,
    FixedBpsSlippage,
    Instrument,
    RunResult,
    Strategy,
    TimeInForce,
    VolumeShareSlippage,
)
from backtester.engine import SetupError
from backtester.strategies import SmaCross, SmaExtended
from tests.engine_support import bars_frame, scripted
from tests.property.test_engine_properties import (
    CASH,
    fee_models,
    half_units,
    instruments,
    slippage_models,
    submit_actions,
)

Action = Any


@st.composite
def long_rows(draw: st.DrawFn) -> list[tuple[float, float, float, float, float]]:
    n = draw(st.integers(min_value=10, max_value=40))
    rows = []
    for _ in range(n):
        open_, close = draw(half_units), draw(half_units)
        up = draw(st.sampled_from([0.0, 0.5, 1.0, 3.0]))
        down = draw(st.sampled_from([0.0, 0.5, 1.0, 3.0]))
        volume = draw(st.sampled_from([0.0, 2.0, 8.0, 50.0, 1000.0]))
        rows.append((open_, max(open_, close) + up, min(open_, close) - down, close, volume))
    return rows


@st.composite
def sparse_scripts(draw: st.DrawFn, bars: int) -> dict[int, list[Action]]:
    """Actions on a few bars only, so signal mode has idle bars to skip."""
    active = draw(st.lists(st.integers(0, bars - 1), min_size=1, max_size=6, unique=True))
    return {i: draw(st.lists(submit_actions(), min_size=1, max_size=3)) for i in sorted(active)}


def with_active_bars(script: dict[int, list[Action]]) -> type[Strategy[Any]]:
    """The scripted strategy, keeping the ids it submitted, with the bars it acts on declared."""
    base = scripted(script)

    class Declared(base):  # type: ignore[misc, valid-type]
        def on_start(self) -> None:
            super().on_start()
            self.ids: list[int] = []

        def active_bars(self) -> np.ndarray:
            return np.array(sorted(i for i, actions in script.items() if actions), dtype=np.int64)

    return Declared


def both_modes(make: Any) -> tuple[RunResult, RunResult]:
    return make("dense"), make("signal")


@settings(max_examples=150, deadline=None)
@given(
    long_rows().flatmap(lambda rows: st.tuples(st.just(rows), sparse_scripts(len(rows)))),
    fee_models,
    slippage_models,
    instruments,
    st.sampled_from(["ohlc", "pessimistic"]),
    st.booleans(),
)
def test_signal_mode_equals_dense_on_random_order_streams(
    rows_and_script: tuple[list[Any], dict[int, list[Action]]],
    fees: Any,
    slippage: Any,
    instrument: Instrument,
    intrabar: str,
    trade_on_close: bool,
) -> None:
    rows, script = rows_and_script
    dense, signal = both_modes(
        lambda mode: Backtest(
            bars_frame(rows),
            with_active_bars(script),
            cash=CASH,
            fees=fees,
            slippage=slippage,
            instrument=instrument,
            intrabar=intrabar,
            trade_on_close=trade_on_close,
            mode=mode,
        ).run()
    )
    assert signal.digest == dense.digest
    assert signal.orders.equals(dense.orders)
    assert signal.stats == dense.stats


REFERENCE_CASES = [
    ("golden/data/binance_BTC-USDT_1m.parquet", SmaCross, {"fast": 10, "slow": 30}, {}),
    (
        "golden/data/binance_BTC-USDT_1m.parquet",
        SmaExtended,
        {"fast": 10, "slow": 30, "stop_loss_pct": 0.5, "take_profit_pct": 0.8, "cooldown_bars": 5},
        {},
    ),
    (
        "golden/data/binanceus_BTC-USDT_1m_2023-03.csv",
        SmaExtended,
        {
            "fast": 5,
            "slow": 40,
            "stop_loss_pct": 0.3,
            "take_profit_pct": 0.3,
            "position_fraction": 0.5,
        },
        {"slippage": VolumeShareSlippage(volume_limit=0.01)},
    ),
    (
        "golden/data/binanceus_BTC-USDT_1m_2023-03.csv",
        SmaCross,
        {"fast": 5, "slow": 40},
        {
            "slippage": FixedBpsSlippage(bps=3),
            "instrument": Instrument("BTC/USDT", tick_size=0.01, lot_size=0.00001),
        },
    ),
]


@pytest.mark.parametrize(
    ("data", "strategy", "params", "knobs"),
    REFERENCE_CASES,
    ids=["sma_cross", "sma_extended_sl_tp", "sma_extended_partial_fills", "sma_cross_grid_bps"],
)
def test_signal_mode_equals_dense_on_reference_strategies(
    data: str, strategy: type[Strategy[Any]], params: dict[str, Any], knobs: dict[str, Any]
) -> None:
    dense, signal = both_modes(
        lambda mode: Backtest(data, strategy, cash=100_000, fee_rate=0.001, mode=mode, **knobs).run(
            **params
        )
    )
    assert dense.stats["fills"] > 100
    assert signal.digest == dense.digest
    assert signal.trades.equals(dense.trades)


def test_signal_mode_refuses_a_strategy_without_active_bars() -> None:
    rows = [(100.0, 101.0, 99.0, 100.0, 10.0)] * 3
    with pytest.raises(SetupError, match="declares no active_bars"):
        Backtest(bars_frame(rows), scripted({}), mode="signal").run()


def test_daily_loss_limit_keeps_sma_extended_dense() -> None:
    bt = Backtest("golden/data/binance_BTC-USDT_1m.parquet", SmaExtended, mode="signal")
    with pytest.raises(SetupError):
        bt.run(daily_loss_limit_pct=1.0)


def test_ioc_orders_expire_on_the_next_bar_in_signal_mode_too() -> None:
    rows = [(100.0, 100.5, 99.5, 100.0, 10.0)] * 12
    script = {2: [lambda s: s.buy(1.0, limit=90.0, time_in_force=TimeInForce.IOC)]}
    dense, signal = both_modes(
        lambda mode: Backtest(bars_frame(rows), with_active_bars(script), mode=mode).run()
    )
    assert signal.orders["status"].to_list() == ["expired"]
    assert signal.digest == dense.digest
