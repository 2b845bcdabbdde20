"""The venue's lane for a book of one order (`SimulatedVenue._match_one`) is `_match` on that
book: on random order streams (market, limit, stop and stop-limit orders, GTC and IOC, quantities
and fractions, cancels), fees, slippage, grids, intrabar policies, fills at the open or the close,
dense and signal mode, every message the bus delivers, in order, and the result's digest are the
same with the lane as without it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backtester import Backtest
from backtester.execution.venue import SimulatedVenue
from tests.engine_support import bars_frame, message_stream
from tests.property.test_engine_properties import CASH, PROPERTY_SETTINGS, runs
from tests.property.test_signal_mode import with_active_bars


@pytest.fixture(autouse=True)
def _lane_restored() -> Iterator[None]:
    yield
    SimulatedVenue.single_lane = True


def _stream(case: dict[str, Any], lane: bool) -> tuple[int, str, str]:
    """(messages delivered, hash of them in delivery order, the result's digest)."""
    SimulatedVenue.single_lane = lane
    engine = Backtest(
        bars_frame(case["rows"]),
        with_active_bars(case["script"]),
        cash=CASH,
        fees=case["fees"],
        slippage=case["slippage"],
        instrument=case["instrument"],
        intrabar=case["intrabar"],
        trade_on_close=case["trade_on_close"],
        mode=case["mode"],
    ).engine()
    count, stream, result = message_stream(engine)
    return count, stream, result.digest


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    """The engine properties' runs, with every intrabar policy and either event-path mode."""
    case: dict[str, Any] = draw(runs())
    case["intrabar"] = draw(st.sampled_from(["ohlc", "pessimistic", "optimistic"]))
    case["mode"] = draw(st.sampled_from(["dense", "signal"]))
    return case


@PROPERTY_SETTINGS
@given(cases())
def test_the_single_order_lane_delivers_what_the_general_match_does(case: dict[str, Any]) -> None:
    assert _stream(case, lane=True) == _stream(case, lane=False)
