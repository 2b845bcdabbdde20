"""A new order type is one module and one registration: the test-local "stop at close" type runs
through risk, the venue and signal mode without an edit anywhere else."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from backtester import Backtest, Strategy
from backtester.domain.enums import SELL
from backtester.domain.messages import Bar
from backtester.orders import register, unregister
from tests.engine_support import Row, bars_frame
from tests.unit.orders.stop_at_close import StopAtClose


@pytest.fixture
def registered() -> Iterator[None]:
    register(StopAtClose())
    yield
    unregister(StopAtClose.name)


class BuyThenStopAtClose(Strategy[Any]):
    def active_bars(self) -> np.ndarray:
        return np.array([0, 1])

    def on_bar(self, bar: Bar) -> None:
        if bar.index == 0:
            self.buy(1.0)
        elif bar.index == 1:
            self.ctx.publish(self.order(SELL, 1.0, order_type="stop_at_close", stop=97.0))


FLAT: Row = (100.0, 100.0, 100.0, 100.0, 1000.0)
ROWS = [
    FLAT,
    FLAT,
    (100.0, 101.0, 95.0, 99.0, 1000.0),  # dips below 97 but closes above it: no trigger
    (99.0, 99.5, 96.0, 96.5, 1000.0),  # closes below 97: fills at the close
    FLAT,
]


@pytest.mark.parametrize("mode", ["dense", "signal"])
def test_stop_at_close_fills_at_the_first_close_beyond_its_stop(
    registered: None, mode: str
) -> None:
    result = Backtest(bars_frame(ROWS), BuyThenStopAtClose, cash=1000, mode=mode).run()
    sell = result.fills.filter(side="sell").to_dicts()
    assert [(f["price"], f["quantity"], f["liquidity"]) for f in sell] == [(96.5, 1.0, "taker")]
    assert result.orders.filter(order_id=2)["type"].to_list() == ["stop_at_close"]


def test_an_unregistered_order_type_is_denied_with_its_name() -> None:
    result = Backtest(bars_frame(ROWS), BuyThenStopAtClose, cash=1000).run()
    denied = result.orders.filter(order_id=2).to_dicts()[0]
    assert denied["status"] == "denied"
    assert "unknown order type 'stop_at_close'" in denied["reason"]
