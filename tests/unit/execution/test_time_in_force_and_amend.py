"""Trailing stops, time in force (FOK, GTD, DAY), amendments and the answers a strategy hears in
`on_order`, pinned on hand-built bars."""

from __future__ import annotations

from typing import Any

from backtester import Backtest, Strategy, TimeInForce, VolumeShareSlippage
from backtester.domain.enums import SELL
from backtester.domain.messages import Bar
from backtester.strategy.base import OrderEvent
from tests.engine_support import BAR_MS, NS_PER_MS, T0_MS, Row, bars_frame, run_script

FLAT: Row = (100.0, 100.0, 100.0, 100.0, 1000.0)


def fills(result: Any) -> list[tuple[int, float]]:
    return [(f["order_id"], f["price"]) for f in result.fills.to_dicts()]


def status(result: Any, order_id: int) -> tuple[str, str]:
    row = result.orders.filter(order_id=order_id).to_dicts()[0]
    return row["status"], row["reason"]


# --- trailing stops -------------------------------------------------------------------------------


def test_trailing_stop_follows_the_high_along_the_path_and_triggers_on_the_pullback() -> None:
    rows = [
        FLAT,
        FLAT,
        (100.0, 104.0, 99.5, 103.0, 1000.0),  # up bar: dips to 99.5 (above 98), mark rises to 104
        (103.0, 106.0, 102.5, 105.0, 1000.0),  # mark 106; the low 102.5 stays above 104
        (105.0, 105.5, 101.0, 101.5, 1000.0),  # down bar: 105.5 then down through 103.5
    ]
    script = {0: [lambda s: s.buy(1.0)], 1: [lambda s: s.trailing_stop(SELL, 1.0, offset=2.0)]}
    result = run_script(rows, script, cash=1000)
    assert fills(result) == [(1, 100.0), (2, 104.0)]  # the trail at 106 - 2


def test_trailing_stop_in_percent_with_an_activation_price() -> None:
    rows = [
        FLAT,
        FLAT,
        (100.0, 101.0, 95.0, 100.0, 1000.0),  # not active yet: a fall of 5% does nothing
        (100.0, 110.0, 99.0, 109.0, 1000.0),  # up bar: active at 105, mark 110 (stop 104.5)
        (109.0, 109.5, 104.0, 104.5, 1000.0),
    ]

    def trail(s: Any) -> None:
        s.trailing_stop(SELL, 1.0, offset=5.0, unit="percent", activation=105.0)

    result = run_script(rows, {0: [lambda s: s.buy(1.0)], 1: [trail]}, cash=1000)
    assert fills(result) == [(1, 100.0), (2, 110.0 * (1.0 - 5.0 / 100.0))]


def test_trailing_stop_as_a_bracket_exit_starts_from_the_entry_fill() -> None:
    rows = [FLAT, (100.0, 103.0, 99.0, 102.0, 1000.0), (102.0, 102.5, 99.0, 99.5, 1000.0)]
    result = run_script(rows, {0: [lambda s: s.buy(1.0, trail=3.0)]}, cash=1000)
    assert fills(result) == [(1, 100.0), (2, 100.0)]  # the high 103 - 3
    assert result.trades["exit_reason"].to_list() == ["trailing_stop"]


# --- time in force -------------------------------------------------------------------------------


def test_fill_or_kill_expires_unfilled_when_the_bar_cannot_fill_all_of_it() -> None:
    rows = [FLAT, FLAT, FLAT]
    script = {
        0: [lambda s: s.buy(5.0, time_in_force=TimeInForce.FOK)],
        1: [lambda s: s.buy(1.0, time_in_force=TimeInForce.FOK)],
    }
    slippage = VolumeShareSlippage(volume_limit=0.002, price_impact=0.0)  # 2 per bar
    result = run_script(rows, script, cash=1000, slippage=slippage)
    assert status(result, 1)[0] == "expired"
    assert status(result, 1)[1].startswith("fill or kill")
    assert fills(result) == [(2, 100.0)]


def test_good_till_date_expires_at_its_time_and_day_orders_at_the_end_of_the_day() -> None:
    rows = [FLAT] * 6
    expire = (T0_MS + 3 * BAR_MS) * NS_PER_MS
    script = {
        0: [
            lambda s: s.buy(1.0, limit=90.0, time_in_force=TimeInForce.GTD, expire_time=expire),
            lambda s: s.buy(1.0, limit=90.0, time_in_force=TimeInForce.DAY),
        ]
    }
    result = run_script(rows, script, cash=1000)
    row = result.orders.filter(order_id=1).to_dicts()[0]
    assert (row["status"], row["reason"]) == ("expired", "gtd expiry")
    assert row["ts_closed"].timestamp() * 1000 == T0_MS + 3 * BAR_MS
    # T0 is 22:13 UTC: the day order lives past the six bars.
    assert status(result, 2) == ("canceled", "end of data")


def test_a_gtd_order_without_a_future_expire_time_is_denied() -> None:
    script = {0: [lambda s: s.buy(1.0, limit=90.0, time_in_force=TimeInForce.GTD)]}
    result = run_script([FLAT, FLAT], script, cash=1000)
    assert status(result, 1) == ("denied", "a GTD order needs an expire time")


# --- amend and the answers -----------------------------------------------------------------------


class Amending(Strategy[Any]):
    def on_start(self) -> None:
        self.heard: list[tuple[str, int, str]] = []

    def on_bar(self, bar: Bar) -> None:
        if bar.index == 0:
            self.buy(1.0, limit=90.0)
            self.buy(100.0)  # beyond the cash: denied
        elif bar.index == 1:
            self.modify(1, price=99.0)
            self.modify(1, trigger=95.0)  # a limit has no stop: rejected
            self.modify(7)
            self.cancel(8)

    def on_order(self, event: OrderEvent) -> None:
        reason = getattr(event, "reason", "")
        order_id = event.order.order_id if hasattr(event, "order") else event.order_id
        self.heard.append((type(event).__name__, order_id, reason))


def test_modify_moves_a_resting_limit_and_every_answer_reaches_on_order() -> None:
    rows = [FLAT, FLAT, (100.0, 100.0, 98.0, 99.0, 1000.0), FLAT]
    bt = Backtest(bars_frame(rows), Amending, cash=1000)
    engine = bt.engine()
    result = engine.run()
    assert fills(result) == [(1, 99.0)]
    heard = engine.strategy.heard  # type: ignore[attr-defined]
    assert [(kind, order_id) for kind, order_id, _ in heard] == [
        ("OrderAccepted", 1),
        ("OrderDenied", 2),
        ("OrderModified", 1),
        ("OrderModifyRejected", 1),
        ("OrderModifyRejected", 7),
        ("OrderCancelRejected", 8),
    ]
    assert heard[1][2].startswith("insufficient cash")
    assert heard[3][2] == "limit order has no stop price"
    assert heard[4][2] == "no open order with this id"
    assert result.stats["orders_denied"] == 1
    assert result.stats["denial_reasons"] == "insufficient_cash=1"
    assert "warning: 1 of 2 orders were denied" in repr(result)
