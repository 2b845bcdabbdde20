"""The compiled order path on perpetuals (isolated margin, long and short, leverage, contract sizes,
brackets, funding, mark prices, liquidation) gives the event-driven modes' result bit for bit; where
a fill would leave a remainder resting for later bars it hands the run back, and `auto` then gives
the dense result."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
import polars as pl
from hypothesis import event, given, settings
from hypothesis import strategies as st

from backtester import Backtest, FixedBpsSlippage, Instrument, RunResult
from backtester.domain.instrument import MarginTier
from backtester.engine import SetupError
from backtester.execution.fees import FixedRateFee, MakerTakerFee
from backtester.execution.slippage import NoSlippage
from backtester.strategies import SmaCross
from backtester.strategy.signal import SignalStrategy
from tests.engine_support import bars_frame
from tests.property._identity import assert_same_as_dense
from tests.property.test_perpetual_runs import funding_series
from tests.property.test_signal_mode import long_rows

SYMBOL = "BTC/USDT:USDT"
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


class ScriptParams(msgspec.Struct, frozen=True):
    signal: list[int] = []
    entry: float = 1.0
    exit: float = 1.0
    short: bool = False


class Scripted(SignalStrategy[ScriptParams]):
    """Its signal, fractions and shorting come from the parameters."""

    Params = ScriptParams

    def on_start(self) -> None:
        self.entry_fraction = self.params.entry
        self.exit_fraction = self.params.exit
        super().on_start()

    def signals(self) -> np.ndarray:
        return np.array(self.params.signal, dtype=np.int8)


perpetuals = st.builds(
    lambda leverage, size, tiers, minimum: Instrument(
        SYMBOL,
        leverage=leverage,
        margin_mode="isolated",
        contract_size=size,
        margin_tiers=BRACKETS if tiers else (),
        min_notional=minimum,
    ),
    st.sampled_from([1.0, 2.0, 5.0, 20.0]),
    st.sampled_from([1.0, 0.5]),
    st.booleans(),
    st.sampled_from([None, 150.0]),
)


def marks_for(rows: list[Any], skew: float) -> pl.DataFrame:
    """A mark series a little off the bars (same times and timeframe)."""
    return bars_frame([(o * skew, h * skew, low * skew, c * skew, v) for o, h, low, c, v in rows])


def run(mode: str, rows: list[Any], knobs: dict[str, Any], params: dict[str, Any]) -> RunResult:
    return Backtest(bars_frame(rows), Scripted, cash=1_000.0, mode=mode, **knobs).run(**params)  # type: ignore[arg-type]


@settings(max_examples=120, deadline=None)
@given(
    long_rows().flatmap(
        lambda rows: st.tuples(
            st.just(rows),
            st.lists(st.sampled_from([-1, 0, 0, 1]), min_size=len(rows), max_size=len(rows)),
            funding_series(len(rows)),
        )
    ),
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
    knobs: dict[str, Any] = {
        "instrument": instrument,
        "fees": fees,
        "slippage": slippage,
        "trade_on_close": trade_on_close,
    }
    if with_funding:
        knobs["funding"] = funding
    if mark_skew is not None:
        knobs["mark"] = marks_for(rows, mark_skew)
    params = {"signal": signal, "entry": entry, "exit": exit_, "short": short}
    dense = run("dense", rows, knobs, params)
    try:
        compiled = run("compiled", rows, knobs, params)
    except SetupError as declined:
        assert "resting" in str(declined), str(declined)
        event("handed back to the event path")
        assert run("auto", rows, knobs, params).digest == dense.digest
        return
    event(f"compiled; shorted: {bool((dense.trades['side'] == 'short').any())}")
    event(
        f"funding paid: {dense.funding.height > 0}; leverage denials: {dense.stats['fills'] < dense.stats['orders']}"
    )
    results = {"signal": run("signal", rows, knobs, params), "compiled": compiled}
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
    results = {
        mode: Backtest(bars, SmaCross, mode=mode, **knobs).run(fast=2, slow=5, short=True)  # type: ignore[arg-type]
        for mode in ("dense", "signal", "compiled")
    }
    dense = results["dense"]
    assert dense.stats["short_trades"] >= 3 and dense.funding.height >= 4
    assert_same_as_dense(dense, results, "orders", "funding")
