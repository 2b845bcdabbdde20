"""The order types and answers the other files leave out, pinned on hand-built bars: if-touched
orders, a trailing stop-limit, a trail in ticks, a DAY order at the end of the UTC day, an amended
quantity, and `on_order` hearing cancels, expiries and a bracket's exits going live."""

from __future__ import annotations

from typing import Any

from backtester import Backtest, Instrument, Strategy, TimeInForce
from backtester.domain.enums import BUY, SELL
from backtester.domain.messages import Bar
from backtester.strategy.base import OrderEvent
from tests.engine_support import Row, bars_frame, run_script

FLAT: Row = (100.0, 100.0, 100.0, 100.0, 1000.0)


def fills(result: Any) -> list[tuple[int, float, float, str]]:
    rows = result.fills.to_dicts()
    return [(f["order_id"], f["price"], f["quantity"], f["liquidity"]) for f in rows]


def test_market_if_touched_buys_when_the_price_falls_to_it_or_at_an_open_below_it() -> None:
    def mit(s: Any) -> None:
        s.ctx.publish(s.order(BUY, 1.0, order_type="market_if_touched", stop=97.0))

    touched = run_script([FLAT, FLAT, (100.0, 100.5, 96.0, 99.0, 1000.0)], {0: [mit]}, cash=1000)
    assert fills(touched) == [(1, 97.0, 1.0, "taker")]
    gapped = run_script([FLAT, (95.0, 95.5, 94.0, 95.0, 1000.0)], {0: [mit]}, cash=1000)
    assert fills(gapped) == [(1, 95.0, 1.0, "taker")]


def test_limit_if_touched_sells_once_the_price_rises_to_its_trigger() -> None:
    def lit(s: Any) -> None:
        s.ctx.publish(s.order(SELL, 1.0, order_type="limit_if_touched", stop=103.0, limit=102.5))

    rows = [FLAT, FLAT, (100.0, 102.9, 99.5, 101.0, 1000.0), (101.0, 103.5, 100.5, 101.0, 1000.0)]
    result = run_script(rows, {0: [lambda s: s.buy(1.0)], 1: [lit]}, cash=1000)
    # Bar 2 peaks below the trigger; on bar 3 the trigger is within the limit: it takes at 103.
    assert fills(result) == [(1, 100.0, 1.0, "taker"), (2, 103.0, 1.0, "taker")]


def test_trailing_stop_limit_gapped_under_its_limit_waits_for_the_limit_as_a_maker() -> None:
    rows = [
        FLAT,
        FLAT,
        (100.0, 106.0, 99.9, 105.0, 1000.0),  # the trail rises to 106 - 2 = 104: limit 103
        (102.0, 102.5, 101.0, 102.0, 1000.0),  # opens below both: triggered, 103 never reached
        (102.0, 103.5, 101.5, 103.0, 1000.0),  # back up through the limit
    ]

    def trail(s: Any) -> None:
        s.trailing_stop(SELL, 1.0, offset=2.0, limit_offset=1.0)

    result = run_script(rows, {0: [lambda s: s.buy(1.0)], 1: [trail]}, cash=1000)
    assert fills(result) == [(1, 100.0, 1.0, "taker"), (2, 103.0, 1.0, "maker")]
    assert result.orders.filter(order_id=2)["type"].to_list() == ["trailing_stop_limit"]


def test_a_trail_in_ticks_is_that_many_of_the_instruments_ticks() -> None:
    rows = [
        FLAT,
        FLAT,
        (100.0, 104.0, 99.5, 103.0, 1000.0),
        (103.0, 106.0, 102.5, 105.0, 1000.0),  # the mark reaches 106
        (105.0, 105.5, 101.0, 101.5, 1000.0),  # and the price falls through 106 - 4 x 0.5
    ]
    script = {
        0: [lambda s: s.buy(1.0)],
        1: [lambda s: s.trailing_stop(SELL, 1.0, offset=4, unit="ticks")],
    }
    tick = Instrument("BTC/USDT", tick_size=0.5)
    result = run_script(rows, script, cash=1000, instrument=tick)
    assert fills(result) == [(1, 100.0, 1.0, "taker"), (2, 104.0, 1.0, "taker")]


def test_a_day_order_expires_when_the_utc_day_ends() -> None:
    # The bars start at 22:13:20 UTC: bar 107 is the first of the next day, bar 108 reaches 89.
    rows = [FLAT] * 110
    rows[108] = (100.0, 100.0, 89.0, 95.0, 1000.0)
    script = {
        0: [
            lambda s: s.buy(1.0, limit=90.0, time_in_force=TimeInForce.DAY),
            lambda s: s.buy(1.0, limit=90.0),  # good till canceled: fills on bar 108
        ]
    }
    result = run_script(rows, script, cash=1000)
    day = result.orders.filter(order_id=1).to_dicts()[0]
    assert (day["status"], day["reason"]) == ("expired", "day expiry")
    assert day["ts_closed"].isoformat() == "2023-11-15T00:00:20+00:00"
    assert fills(result) == [(2, 90.0, 1.0, "maker")]


def test_modify_changes_the_quantity_of_a_resting_order() -> None:
    rows = [FLAT, FLAT, (100.0, 100.0, 89.0, 95.0, 1000.0)]
    script = {0: [lambda s: s.buy(1.0, limit=90.0)], 1: [lambda s: s.modify(1, quantity=2.0)]}
    assert fills(run_script(rows, script, cash=1000)) == [(1, 90.0, 2.0, "maker")]


class Listening(Strategy[Any]):
    def on_start(self) -> None:
        self.heard: list[tuple[str, int]] = []

    def on_bar(self, bar: Bar) -> None:
        if bar.index == 0:
            self.buy(1.0, limit=90.0)  # 1: canceled on bar 1
            self.buy(1.0, limit=90.0, time_in_force=TimeInForce.IOC)  # 2: expires unfilled
            self.buy(1.0, sl=95.0, tp=110.0)  # 3, with its exits 4 and 5
        elif bar.index == 1:
            self.cancel(1)
        elif bar.index == 2:
            self.close()  # 6: the exits are canceled with the position

    def on_order(self, event: OrderEvent) -> None:
        order_id = event.order.order_id if hasattr(event, "order") else event.order_id
        self.heard.append((type(event).__name__, order_id))


def test_on_order_hears_cancels_expiries_and_exits_going_live() -> None:
    engine = Backtest(bars_frame([FLAT] * 5), Listening, cash=1000).engine()
    engine.run()
    heard = engine.strategy.heard  # type: ignore[attr-defined]
    by_order: dict[int, list[str]] = {}
    for kind, order_id in heard:
        by_order.setdefault(order_id, []).append(kind)
    assert by_order[1] == ["OrderAccepted", "OrderCanceled"]
    assert by_order[2] == ["OrderAccepted", "OrderExpired"]
    assert by_order[3] == ["OrderAccepted"]  # then its fill, in on_fill
    assert by_order[4] == by_order[5] == ["OrderAccepted", "OrderReleased", "OrderCanceled"]
    assert by_order[6] == ["OrderAccepted"]
