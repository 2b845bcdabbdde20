"""Each bar fill rule pinned on hand-built bars: exact fill price, quantity, fee, liquidity and status.

Most tests run the whole engine (Backtest + a scripted strategy); the path model itself is also pinned
through `matching.trigger`. Prices are chosen so that the expected values are exact in binary floats
wherever the rule is arithmetic (volume-share impact, fraction sizing), so `==` is the right comparison.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import pytest

from backtester import (
    FixedBpsSlippage,
    FixedRateFee,
    Instrument,
    MakerTakerFee,
    TimeInForce,
    VolumeShareSlippage,
)
from backtester.domain.enums import Liquidity, OrderStatus, OrderType, Side
from backtester.domain.messages import Bar, SubmitOrder
from backtester.execution import matching
from backtester.results import RunResult
from tests.engine_support import Row, bar_ns, observed_engine, run_script, scripted

FLAT: Row = (100.0, 100.0, 100.0, 100.0, 1000.0)
UP_WIDE: Row = (102.0, 110.0, 95.0, 108.0, 1000.0)  # up bar: path O -> L -> H -> C
DOWN_WIDE: Row = (100.0, 110.0, 95.0, 97.0, 1000.0)  # down bar: path O -> H -> L -> C


def fill_rows(result: RunResult) -> list[dict[str, Any]]:
    """The fills as dicts, `ts` as int64 epoch nanoseconds."""
    return result.fills.drop("instrument").with_columns(pl.col("ts").dt.epoch("ns")).to_dicts()


def order(result: RunResult, order_id: int) -> dict[str, Any]:
    """One row of the orders frame, `ts_closed` as int64 epoch nanoseconds."""
    frame = result.orders.with_columns(pl.col("ts_closed").dt.epoch("ns"))
    rows = frame.filter(order_id=order_id).to_dicts()
    assert len(rows) == 1
    return rows[0]


def single_fill(result: RunResult) -> dict[str, Any]:
    fills = fill_rows(result)
    assert len(fills) == 1, fills
    return fills[0]


# --- market ---------------------------------------------------------------------------------------


def test_market_buy_placed_on_bar_fills_at_next_bar_open() -> None:
    result = run_script([FLAT, UP_WIDE, FLAT], {0: [lambda s: s.buy(1.5)]}, cash=1000)
    fill = single_fill(result)
    assert fill["price"] == 102.0
    assert fill["quantity"] == 1.5
    assert fill["liquidity"] == "taker"
    assert fill["leaves_quantity"] == 0.0
    assert fill["ts"] == bar_ns(1)
    assert order(result, 1)["status"] == "filled"


def test_market_sell_closes_position_at_next_open() -> None:
    rows = [FLAT, FLAT, (104.0, 105.0, 103.0, 104.5, 1000.0), FLAT]
    result = run_script(rows, {0: [lambda s: s.buy(2.0)], 1: [lambda s: s.sell(2.0)]}, cash=1000)
    sell = fill_rows(result)[1]
    assert (sell["side"], sell["price"], sell["quantity"]) == ("sell", 104.0, 2.0)
    assert result.equity["cash"][-1] == 1000 - 200.0 + 208.0


# --- limit ----------------------------------------------------------------------------------------


def test_limit_buy_marketable_on_arrival_fills_at_open_as_taker() -> None:
    result = run_script([FLAT, UP_WIDE], {0: [lambda s: s.buy(1.0, limit=103.0)]}, cash=1000)
    fill = single_fill(result)
    assert (fill["price"], fill["quantity"], fill["liquidity"]) == (102.0, 1.0, "taker")


def test_limit_buy_touched_intrabar_fills_at_limit() -> None:
    result = run_script([FLAT, UP_WIDE], {0: [lambda s: s.buy(1.0, limit=97.0)]}, cash=1000)
    fill = single_fill(result)
    assert (fill["price"], fill["quantity"], fill["liquidity"]) == (97.0, 1.0, "maker")


def test_limit_buy_exactly_at_the_low_fills_at_limit() -> None:
    result = run_script([FLAT, UP_WIDE], {0: [lambda s: s.buy(1.0, limit=95.0)]}, cash=1000)
    assert single_fill(result)["price"] == 95.0


def test_limit_buy_below_the_low_does_not_fill_and_is_canceled_at_end_of_data() -> None:
    result = run_script(
        [FLAT, UP_WIDE, UP_WIDE], {0: [lambda s: s.buy(1.0, limit=94.5)]}, cash=1000
    )
    assert result.fills.height == 0
    record = order(result, 1)
    assert (record["status"], record["reason"]) == ("canceled", "end of data")


def test_limit_sell_marketable_on_arrival_fills_at_open_as_taker() -> None:
    rows = [FLAT, FLAT, DOWN_WIDE]
    result = run_script(rows, {0: [lambda s: s.buy(1.0)], 1: [lambda s: s.sell(1.0, limit=99.0)]})
    sell = fill_rows(result)[1]
    assert (sell["price"], sell["liquidity"]) == (100.0, "taker")


def test_limit_sell_touched_intrabar_fills_at_limit() -> None:
    rows = [FLAT, FLAT, DOWN_WIDE]
    result = run_script(rows, {0: [lambda s: s.buy(1.0)], 1: [lambda s: s.sell(1.0, limit=107.5)]})
    sell = fill_rows(result)[1]
    assert (sell["price"], sell["liquidity"]) == (107.5, "maker")


def test_limit_order_is_not_eligible_on_the_bar_that_placed_it() -> None:
    rows = [(100.0, 101.0, 90.0, 100.0, 1000.0), (100.0, 100.5, 98.0, 99.0, 1000.0)]
    result = run_script(rows, {0: [lambda s: s.buy(1.0, limit=95.0)]}, cash=1000)
    assert result.fills.height == 0
    assert order(result, 1)["status"] == "canceled"


# --- stop -----------------------------------------------------------------------------------------


def test_stop_buy_gapped_through_at_open_fills_at_open() -> None:
    result = run_script([FLAT, UP_WIDE], {0: [lambda s: s.buy(1.0, stop=101.0)]}, cash=1000)
    fill = single_fill(result)
    assert (fill["price"], fill["liquidity"]) == (102.0, "taker")


def test_stop_buy_touched_intrabar_fills_at_stop() -> None:
    result = run_script([FLAT, UP_WIDE], {0: [lambda s: s.buy(1.0, stop=105.0)]}, cash=1000)
    fill = single_fill(result)
    assert (fill["price"], fill["quantity"], fill["liquidity"]) == (105.0, 1.0, "taker")


def test_stop_buy_above_the_high_does_not_fill() -> None:
    result = run_script([FLAT, UP_WIDE], {0: [lambda s: s.buy(1.0, stop=110.5)]}, cash=1000)
    assert result.fills.height == 0
    assert order(result, 1)["status"] == "canceled"


def test_stop_sell_gapped_through_at_open_fills_at_open() -> None:
    rows = [FLAT, FLAT, (96.0, 97.0, 94.0, 95.0, 1000.0)]
    result = run_script(rows, {0: [lambda s: s.buy(1.0)], 1: [lambda s: s.sell(1.0, stop=98.0)]})
    sell = fill_rows(result)[1]
    assert (sell["price"], sell["liquidity"]) == (96.0, "taker")


def test_stop_sell_touched_intrabar_fills_at_stop() -> None:
    rows = [FLAT, FLAT, DOWN_WIDE]
    result = run_script(rows, {0: [lambda s: s.buy(1.0)], 1: [lambda s: s.sell(1.0, stop=96.5)]})
    sell = fill_rows(result)[1]
    assert (sell["price"], sell["liquidity"]) == (96.5, "taker")


# --- stop-limit -----------------------------------------------------------------------------------


def test_stop_limit_buy_triggered_within_limit_fills_at_trigger_as_taker() -> None:
    script = {0: [lambda s: s.buy(1.0, stop=105.0, limit=106.0)]}
    fill = single_fill(run_script([FLAT, UP_WIDE], script, cash=1000))
    assert (fill["price"], fill["liquidity"]) == (105.0, "taker")


def test_stop_limit_buy_triggered_then_filled_when_price_returns_to_limit_as_maker() -> None:
    # Down bar O=100 -> H=110 (stop 105 triggers on the way up) -> L=95 (limit 104 reached on the way down).
    script = {0: [lambda s: s.buy(1.0, stop=105.0, limit=104.0)]}
    fill = single_fill(run_script([FLAT, DOWN_WIDE], script, cash=1000))
    assert (fill["price"], fill["liquidity"]) == (104.0, "maker")


def test_stop_limit_buy_triggered_but_limit_never_reached_does_not_fill() -> None:
    # Up bar O=102 -> L=95 -> H=110 -> C=108: the stop triggers at 105 on the way up, price stays above 104.
    script = {0: [lambda s: s.buy(1.0, stop=105.0, limit=104.0)]}
    result = run_script([FLAT, UP_WIDE], script, cash=1000, intrabar="ohlc")
    assert result.fills.height == 0
    assert order(result, 1)["status"] == "canceled"


def test_stop_limit_triggered_on_one_bar_stays_a_limit_and_fills_on_a_later_bar() -> None:
    # Bar 1 reaches the stop (105) but stays above the limit (104); bar 2 never gets back up to the
    # stop, but dips to the limit: the triggered order is a limit now, and fills there as maker.
    rows = [FLAT, UP_WIDE, (103.0, 103.5, 101.0, 102.0, 1000.0)]
    script = {0: [lambda s: s.buy(1.0, stop=105.0, limit=104.0)]}
    fill = single_fill(run_script(rows, script, cash=1000, intrabar="ohlc"))
    assert (fill["price"], fill["liquidity"]) == (103.0, "maker")  # the open of bar 2


def test_stop_limit_not_triggered_ignores_its_limit() -> None:
    # The price passes the limit (104) but never reaches the stop (105): nothing fills.
    rows = [FLAT, (103.0, 103.5, 101.0, 102.0, 1000.0)]
    script = {0: [lambda s: s.buy(1.0, stop=105.0, limit=104.0)]}
    assert run_script(rows, script, cash=1000).fills.height == 0


def test_stop_limit_buy_gapped_over_its_limit_fills_when_price_comes_back_to_limit() -> None:
    rows = [FLAT, (107.0, 108.0, 104.0, 107.5, 1000.0)]  # up bar: O=107 -> L=104: passes 106
    script = {0: [lambda s: s.buy(1.0, stop=105.0, limit=106.0)]}
    fill = single_fill(run_script(rows, script, cash=1000))
    assert (fill["price"], fill["liquidity"]) == (106.0, "maker")


def test_stop_limit_sell_triggered_within_limit_fills_at_trigger() -> None:
    rows = [FLAT, FLAT, DOWN_WIDE]
    script = {0: [lambda s: s.buy(1.0)], 1: [lambda s: s.sell(1.0, stop=97.0, limit=96.0)]}
    sell = fill_rows(run_script(rows, script))[1]
    assert (sell["price"], sell["liquidity"]) == (97.0, "taker")


# --- the path model, directly --------------------------------------------------------------------


def _bar(o: float, h: float, low: float, c: float) -> Bar:
    return Bar(instrument="X", index=0, ts_event=0, open=o, high=h, low=low, close=c, volume=1.0)


def _order(side: Side, kind: OrderType, limit: float | None, stop: float | None) -> SubmitOrder:
    return SubmitOrder(
        order_id=1,
        instrument="X",
        side=side,
        order_type=kind,
        ts_init=0,
        ref_price=100.0,
        quantity=1.0,
        limit_price=limit,
        stop_price=stop,
    )


@pytest.mark.parametrize(
    ("side", "kind", "limit", "stop", "expected"),
    [
        (Side.BUY, OrderType.MARKET, None, None, (0.0, 100.0, Liquidity.TAKER, True)),
        # marketable the moment it becomes eligible: it takes liquidity at the open
        (Side.BUY, OrderType.LIMIT, 101.0, None, (0.0, 100.0, Liquidity.TAKER, True)),
        # up bar path 100 -> 90 -> 120 -> 110: 95 is crossed half-way down the first segment
        (Side.BUY, OrderType.LIMIT, 95.0, None, (0.5, 95.0, Liquidity.MAKER, False)),
        (Side.SELL, OrderType.LIMIT, 105.0, None, (1.5, 105.0, Liquidity.MAKER, False)),
        (Side.BUY, OrderType.STOP, None, 99.0, (0.0, 100.0, Liquidity.TAKER, True)),
        (Side.BUY, OrderType.STOP, None, 105.0, (1.5, 105.0, Liquidity.TAKER, True)),
        (Side.SELL, OrderType.STOP, None, 95.0, (0.5, 95.0, Liquidity.TAKER, True)),
        (Side.BUY, OrderType.STOP_LIMIT, 106.0, 105.0, (1.5, 105.0, Liquidity.TAKER, False)),
        # stop 105 triggers at t=1.5; the limit 115 is within at once: taker at the trigger price
        (Side.BUY, OrderType.STOP_LIMIT, 115.0, 105.0, (1.5, 105.0, Liquidity.TAKER, False)),
        # after the high at t=2 the path falls 120 -> 110 and reaches 112 at t=2.8
        (Side.BUY, OrderType.STOP_LIMIT, 112.0, 118.0, (2.8, 112.0, Liquidity.MAKER, False)),
    ],
)
def test_trigger_on_up_bar_path_gives_exact_time_price_and_liquidity(
    side: Side,
    kind: OrderType,
    limit: float | None,
    stop: float | None,
    expected: tuple[float, float, Liquidity, bool],
) -> None:
    bar = _bar(100.0, 120.0, 90.0, 110.0)
    path = matching.bar_path(bar, low_first=True)
    assert path == (100.0, 90.0, 120.0, 110.0)
    hit = matching.trigger(_order(side, kind, limit, stop), path)
    assert hit is not None
    assert hit.time == pytest.approx(expected[0], abs=1e-12)
    assert (hit.price, hit.liquidity, hit.slips) == expected[1:]


@pytest.mark.parametrize(
    ("side", "kind", "limit", "stop"),
    [
        (Side.BUY, OrderType.LIMIT, 89.0, None),
        (Side.SELL, OrderType.LIMIT, 121.0, None),
        (Side.BUY, OrderType.STOP, None, 121.0),
        (Side.SELL, OrderType.STOP, None, 89.0),
        (Side.BUY, OrderType.STOP_LIMIT, 104.0, 105.0),  # after the trigger the path stays >= 110
    ],
)
def test_trigger_out_of_reach_of_the_path_is_none(
    side: Side, kind: OrderType, limit: float | None, stop: float | None
) -> None:
    path = matching.bar_path(_bar(100.0, 120.0, 90.0, 110.0), low_first=True)
    assert matching.trigger(_order(side, kind, limit, stop), path) is None


def test_bar_path_high_first_visits_high_before_low() -> None:
    assert matching.bar_path(_bar(100.0, 120.0, 90.0, 95.0), low_first=False) == (
        100.0,
        120.0,
        90.0,
        95.0,
    )


# --- intrabar path policy -------------------------------------------------------------------------

UP_BOTH: Row = (100.0, 106.0, 94.0, 104.0, 1000.0)
DOWN_BOTH: Row = (100.0, 106.0, 94.0, 96.0, 1000.0)


@pytest.mark.parametrize(
    ("bar", "policy", "winner_id", "winner_price"),
    [
        (UP_BOTH, "ohlc", 2, 95.0),  # O -> L first: the stop-loss
        (DOWN_BOTH, "ohlc", 3, 105.0),  # O -> H first: the take-profit
        (UP_BOTH, "pessimistic", 2, 95.0),  # long: the low first, always
        (DOWN_BOTH, "pessimistic", 2, 95.0),
    ],
    ids=["up-ohlc", "down-ohlc", "up-pessimistic", "down-pessimistic"],
)
def test_intrabar_policy_decides_between_stop_loss_and_take_profit_in_one_bar(
    bar: Row, policy: str, winner_id: int, winner_price: float
) -> None:
    rows = [FLAT, FLAT, bar, FLAT]
    script = {
        0: [lambda s: s.buy(1.0)],
        1: [lambda s: s.sell(1.0, stop=95.0), lambda s: s.sell(1.0, limit=105.0)],
    }
    seen = observed_engine(rows, scripted(script), cash=1000, intrabar=policy)
    result = seen.engine.run()
    sells = [f for f in fill_rows(result) if f["side"] == "sell"]
    assert [(f["order_id"], f["price"], f["quantity"]) for f in sells] == [
        (winner_id, winner_price, 1.0)
    ]
    loser = order(result, 5 - winner_id)
    assert (loser["status"], loser["reason"]) == ("canceled", "insufficient position at fill")
    assert seen.venue.path_decided_bars == 1


def test_pessimistic_policy_when_flat_takes_the_high_first() -> None:
    # Flat: the adverse extreme for a buyer is the high, so the stop buy fills before the limit buy.
    script = {0: [lambda s: s.buy(1.0, limit=95.0), lambda s: s.buy(1.0, stop=105.0)]}
    ohlc = run_script([FLAT, UP_BOTH], script, cash=1000, intrabar="ohlc")
    pessimistic = run_script([FLAT, UP_BOTH], script, cash=1000, intrabar="pessimistic")
    assert ohlc.fills["order_id"].to_list() == [1, 2]
    assert pessimistic.fills["order_id"].to_list() == [2, 1]


# --- volume share ---------------------------------------------------------------------------------

THIN: Row = (128.0, 128.0, 128.0, 128.0, 8.0)
VOLUME_SHARE = VolumeShareSlippage(volume_limit=0.25, price_impact=0.5)  # 2 per bar of volume 8


def test_volume_share_gtc_order_fills_partially_over_consecutive_bars() -> None:
    result = run_script([THIN] * 5, {0: [lambda s: s.buy(5.0)]}, cash=10_000, slippage=VOLUME_SHARE)
    fills = fill_rows(result)
    # full bars: share 0.25, impact 0.5 * 0.25**2 = 1/32; last bar: share 1/8, impact 1/128
    assert [(f["quantity"], f["leaves_quantity"], f["price"]) for f in fills] == [
        (2.0, 3.0, 132.0),
        (2.0, 1.0, 132.0),
        (1.0, 0.0, 129.0),
    ]
    assert [f["ts"] for f in fills] == [bar_ns(1), bar_ns(2), bar_ns(3)]
    record = order(result, 1)
    assert (record["status"], record["filled_quantity"]) == ("filled", 5.0)


def test_volume_share_ioc_order_fills_one_bar_and_the_remainder_expires() -> None:
    script = {0: [lambda s: s.buy(5.0, time_in_force=TimeInForce.IOC)]}
    result = run_script([THIN] * 4, script, cash=10_000, slippage=VOLUME_SHARE)
    fill = single_fill(result)
    assert (fill["quantity"], fill["leaves_quantity"], fill["price"]) == (2.0, 3.0, 132.0)
    record = order(result, 1)
    assert (record["status"], record["filled_quantity"]) == ("expired", 2.0)


def test_volume_share_capacity_is_shared_by_orders_filling_in_the_same_bar() -> None:
    script = {0: [lambda s: s.buy(1.5), lambda s: s.buy(1.5)]}
    result = run_script([THIN] * 3, script, cash=10_000, slippage=VOLUME_SHARE)
    fills = fill_rows(result)
    assert [(f["order_id"], f["quantity"], f["leaves_quantity"]) for f in fills] == [
        (1, 1.5, 0.0),
        (2, 0.5, 1.0),
        (2, 1.0, 0.0),
    ]
    assert [f["ts"] for f in fills] == [bar_ns(1), bar_ns(1), bar_ns(2)]


def test_volume_share_ioc_order_on_a_zero_volume_bar_expires_unfilled() -> None:
    rows = [THIN, (128.0, 128.0, 128.0, 128.0, 0.0), THIN]
    script = {0: [lambda s: s.buy(1.0, time_in_force=TimeInForce.IOC)]}
    result = run_script(rows, script, cash=10_000, slippage=VOLUME_SHARE)
    assert result.fills.height == 0
    assert order(result, 1)["status"] == "expired"


@pytest.mark.parametrize("fill_price", [125.0, 80.0])
def test_fraction_buy_blocked_by_a_zero_volume_bar_is_sized_at_the_bar_where_it_fills(
    fill_price: float,
) -> None:
    rows = [
        THIN,
        (100.0, 100.0, 100.0, 100.0, 0.0),
        (fill_price, fill_price, fill_price, fill_price, 1000.0),
    ]
    result = run_script(
        rows,
        {0: [lambda s: s.buy(fraction=1.0)]},
        cash=1000,
        slippage=VolumeShareSlippage(volume_limit=1.0, price_impact=0.0),
    )
    fill = single_fill(result)
    assert (fill["price"], fill["quantity"], fill["leaves_quantity"]) == (
        fill_price,
        1000 / fill_price,
        0.0,
    )
    assert order(result, 1)["status"] == "filled"


# --- trade on close -------------------------------------------------------------------------------


def test_trade_on_close_fills_market_order_at_the_close_of_the_placing_bar() -> None:
    rows = [(100.0, 101.0, 99.0, 100.5, 1000.0), (102.0, 103.0, 101.0, 102.5, 1000.0)]
    script = {0: [lambda s: s.buy(1.0), lambda s: s.buy(1.0, limit=101.5)]}
    result = run_script(rows, script, cash=1000, trade_on_close=True)
    fills = fill_rows(result)
    market, limit = fills
    assert (market["order_id"], market["price"], market["liquidity"]) == (1, 100.5, "taker")
    assert market["ts"] == bar_ns(0)
    # Limit orders still rest until the next bar.
    assert (limit["order_id"], limit["price"]) == (2, 101.5)
    assert limit["ts"] == bar_ns(1)


def test_without_trade_on_close_the_same_market_order_fills_at_next_open() -> None:
    rows = [(100.0, 101.0, 99.0, 100.5, 1000.0), (102.0, 103.0, 101.0, 102.5, 1000.0)]
    result = run_script(rows, {0: [lambda s: s.buy(1.0)]}, cash=1000)
    assert single_fill(result)["price"] == 102.0


# --- fees -----------------------------------------------------------------------------------------

FEE_ROWS: list[Row] = [FLAT, (102.0, 103.0, 101.0, 102.5, 1000.0), FLAT]


def test_fixed_rate_fee_is_rate_times_fill_notional_and_comes_out_of_cash() -> None:
    result = run_script(
        FEE_ROWS, {0: [lambda s: s.buy(1.5)]}, cash=1000, fees=FixedRateFee(rate=0.001)
    )
    fill = single_fill(result)
    notional = 1.5 * 102.0
    assert fill["fee"] == notional * 0.001
    assert result.equity["cash"][-1] == 1000 - (notional + notional * 0.001)
    assert result.stats["fees_paid"] == notional * 0.001


def test_fee_rate_keyword_is_a_fixed_rate_on_both_sides() -> None:
    script = {0: [lambda s: s.buy(2.0)], 1: [lambda s: s.sell(2.0)]}
    result = run_script(FEE_ROWS, script, cash=1000, fee_rate=0.25)
    assert result.fills["fee"].to_list() == [204.0 * 0.25, 200.0 * 0.25]
    assert result.equity["cash"][-1] == 1000 - 204.0 - 51.0 + 200.0 - 50.0


def test_maker_taker_fee_charges_maker_on_limit_fills_and_taker_on_market_and_stop() -> None:
    script = {
        0: [
            lambda s: s.buy(1.0),
            lambda s: s.buy(1.0, limit=101.5),
            lambda s: s.buy(1.0, stop=102.75),
        ]
    }
    fees = MakerTakerFee(maker=0.001, taker=0.002)
    result = run_script(FEE_ROWS, script, cash=1000, fees=fees)
    got = {f["order_id"]: (f["liquidity"], f["price"], f["fee"]) for f in fill_rows(result)}
    assert got == {
        1: ("taker", 102.0, 102.0 * 0.002),
        2: ("maker", 101.5, 101.5 * 0.001),
        3: ("taker", 102.75, 102.75 * 0.002),
    }


def test_maker_taker_fee_on_stop_limit_depends_on_whether_it_filled_at_the_trigger() -> None:
    fees = MakerTakerFee(maker=0.25, taker=0.5)
    at_trigger = run_script(
        [FLAT, UP_WIDE], {0: [lambda s: s.buy(1.0, stop=105.0, limit=106.0)]}, cash=1000, fees=fees
    )
    resting = run_script(
        [FLAT, DOWN_WIDE],
        {0: [lambda s: s.buy(1.0, stop=105.0, limit=104.0)]},
        cash=1000,
        fees=fees,
    )
    assert single_fill(at_trigger)["fee"] == 105.0 * 0.5
    assert single_fill(resting)["fee"] == 104.0 * 0.25


@pytest.mark.parametrize(
    "make",
    [lambda: FixedRateFee(rate=-0.001), lambda: MakerTakerFee(maker=-0.001, taker=0.001)],
    ids=["fixed", "maker-taker"],
)
def test_negative_fee_rates_are_rejected(make: Any) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        make()


# --- fixed-bps slippage ---------------------------------------------------------------------------


def test_fixed_bps_slippage_moves_taker_fills_against_the_taker_and_spares_limit_fills() -> None:
    rows = [FLAT, (200.0, 210.0, 190.0, 205.0, 1000.0), (400.0, 410.0, 390.0, 405.0, 1000.0)]
    script = {
        0: [
            lambda s: s.buy(1.0),
            lambda s: s.buy(1.0, limit=195.0),
            lambda s: s.buy(1.0, stop=208.0),
        ],
        1: [lambda s: s.sell(3.0)],
    }
    result = run_script(rows, script, cash=10_000, slippage=FixedBpsSlippage(bps=50))
    got = [(f["order_id"], f["price"]) for f in fill_rows(result)]
    assert got == [
        (1, 200.0 * (1.0 + 50 * 1e-4)),
        (2, 195.0),
        (3, 208.0 * (1.0 + 50 * 1e-4)),
        (4, 400.0 * (1.0 - 50 * 1e-4)),
    ]
    assert got[0][1] == pytest.approx(201.0, abs=1e-9)
    assert got[3][1] == pytest.approx(398.0, abs=1e-9)


# --- fraction-of-cash sizing ----------------------------------------------------------------------


def test_fraction_buy_sizes_cash_over_open_times_one_plus_fee() -> None:
    # 1000 / (100 * 1.25) = 8 exactly: the whole cash goes, fee included.
    rows = [FLAT, FLAT]
    result = run_script(rows, {0: [lambda s: s.buy(fraction=1.0)]}, cash=1000, fee_rate=0.25)
    fill = single_fill(result)
    assert fill["quantity"] == 1000 / (100.0 * (1 + 0.25)) == 8.0
    assert fill["fee"] == 200.0
    assert result.equity["cash"][-1] == 0.0
    assert order(result, 1)["status"] == "filled"


def test_fraction_buy_where_the_division_overshoots_steps_down_to_the_largest_affordable_quantity() -> (
    None
):
    cash, fee, price = 1000.0, 0.001, 102.0
    rows = [FLAT, (price, price, price, price, 1000.0)]
    result = run_script(rows, {0: [lambda s: s.buy(fraction=1.0)]}, cash=cash, fee_rate=fee)
    formula = cash / (price * (1 + fee))
    expected = formula
    while expected * price + expected * price * fee > cash:
        expected = math.nextafter(expected, 0.0)
    assert expected < formula  # this case does overshoot
    fill = single_fill(result)
    assert fill["quantity"] == expected
    assert fill["leaves_quantity"] == 0.0
    assert result.equity["cash"][-1] >= 0.0
    assert order(result, 1)["status"] == "filled"


def test_fraction_buy_of_half_the_cash() -> None:
    result = run_script(
        [FLAT, FLAT], {0: [lambda s: s.buy(fraction=0.5)]}, cash=1000, fee_rate=0.25
    )
    assert single_fill(result)["quantity"] == 500 / (100.0 * 1.25) == 4.0
    assert result.equity["cash"][-1] == 500.0


def test_fraction_sell_sells_that_share_of_the_position_held_at_fill() -> None:
    script = {0: [lambda s: s.buy(3.0)], 1: [lambda s: s.sell(fraction=0.5)]}
    result = run_script([FLAT, FLAT, FLAT], script, cash=1000)
    assert result.fills["quantity"].to_list() == [3.0, 1.5]


# --- instrument grids and limits ------------------------------------------------------------------

GRID = Instrument("BTC/USDT", tick_size=0.5, lot_size=0.01, min_notional=10.0, max_notional=500.0)


def test_quantity_floors_to_lot_and_prices_round_to_tick() -> None:
    script = {0: [lambda s: s.buy(1.2345, limit=101.26), lambda s: s.buy(1.009, stop=101.2)]}
    result = run_script([FLAT, UP_WIDE], script, cash=1000, instrument=GRID)
    first, second = order(result, 1), order(result, 2)
    assert (first["quantity"], first["limit_price"]) == (1.23, 101.5)
    assert (second["quantity"], second["stop_price"]) == (1.0, 101.0)
    # The stop gaps through at the open (t=0); the limit is touched later on the way down.
    got = [(f["order_id"], f["price"], f["quantity"]) for f in fill_rows(result)]
    assert got == [(2, 102.0, 1.0), (1, 101.5, 1.23)]


def test_slipped_fill_price_is_rounded_to_the_tick() -> None:
    # 102 * 1.0025 = 102.255, nearest 0.5 tick: 102.5
    result = run_script(
        [FLAT, UP_WIDE],
        {0: [lambda s: s.buy(1.0)]},
        cash=1000,
        instrument=GRID,
        slippage=FixedBpsSlippage(bps=25),
    )
    assert single_fill(result)["price"] == 102.5


def test_fraction_buy_floors_to_the_lot() -> None:
    result = run_script(
        [FLAT, FLAT],
        {0: [lambda s: s.buy(fraction=1.0)]},
        cash=333.0,
        instrument=Instrument("BTC/USDT", lot_size=0.01),
    )
    assert single_fill(result)["quantity"] == 3.33


@pytest.mark.parametrize(
    ("quantity", "reason"),
    [
        (0.05, "notional 5 below minimum 10.0"),
        (6.0, "notional 600 above maximum 500.0"),
        (0.004, "quantity rounds to zero on lot size 0.01"),
    ],
)
def test_order_outside_the_instrument_limits_is_denied_with_reason(
    quantity: float, reason: str
) -> None:
    result = run_script(
        [FLAT, FLAT], {0: [lambda s: s.buy(quantity)]}, cash=10_000, instrument=GRID
    )
    assert result.fills.height == 0
    record = order(result, 1)
    assert (record["status"], record["reason"]) == ("denied", reason)


# --- balances -------------------------------------------------------------------------------------


def test_buy_beyond_cash_is_denied_with_reason() -> None:
    result = run_script([FLAT, FLAT], {0: [lambda s: s.buy(11.0)]}, cash=1000)
    record = order(result, 1)
    assert record["status"] == "denied"
    assert record["reason"] == "insufficient cash: needs 1100, available 1000"


def test_second_buy_is_denied_when_the_first_already_claims_the_cash() -> None:
    result = run_script([FLAT, FLAT], {0: [lambda s: s.buy(6.0), lambda s: s.buy(6.0)]}, cash=1000)
    assert order(result, 1)["status"] == "filled"
    second = order(result, 2)
    assert (second["status"], second["reason"]) == (
        "denied",
        "insufficient cash: needs 600, available 400",
    )


def test_sell_without_position_is_denied_as_short_sale() -> None:
    script = {0: [lambda s: s.sell(1.0), lambda s: s.sell(fraction=1.0)]}
    result = run_script([FLAT, FLAT], script, cash=1000)
    assert result.fills.height == 0
    assert (
        order(result, 1)["reason"]
        == "insufficient position: sell 1, held 0 (spot: no short; a short needs a perpetual or future instrument on a margin account)"
    )
    assert (
        order(result, 2)["reason"]
        == "insufficient position: nothing to sell (spot: no short; a short needs a perpetual or future instrument on a margin account)"
    )
    assert result.orders["status"].to_list() == ["denied", "denied"]


def test_sell_of_more_than_held_is_denied() -> None:
    script = {0: [lambda s: s.buy(1.0)], 1: [lambda s: s.sell(1.5)]}
    result = run_script([FLAT, FLAT, FLAT], script, cash=1000)
    record = order(result, 2)
    assert (record["status"], record["reason"]) == (
        "denied",
        "insufficient position: sell 1.5, held 1 (spot: no short; a short needs a perpetual or future instrument on a margin account)",
    )


@pytest.mark.parametrize(
    ("submit", "reason"),
    [
        (lambda s: s.buy(fraction=1.5), "fraction must be in (0, 1], got 1.5"),
        (lambda s: s.buy(-1.0), "quantity must be a positive number, got -1.0"),
        (lambda s: s.buy(1.0, limit=-5.0), "limit price must be a positive number, got -5.0"),
    ],
)
def test_malformed_order_is_denied_with_reason(submit: Any, reason: str) -> None:
    result = run_script([FLAT, FLAT], {0: [submit]}, cash=1000)
    record = order(result, 1)
    assert (record["status"], record["reason"]) == ("denied", reason)


# --- cancel and terminal answers ------------------------------------------------------------------


def test_cancel_of_a_resting_order_removes_it_before_it_could_fill() -> None:
    rows = [FLAT, FLAT, (100.0, 100.0, 40.0, 50.0, 1000.0)]
    script = {0: [lambda s: s.buy(1.0, limit=50.0)], 1: [lambda s: s.cancel(1)]}
    result = run_script(rows, script, cash=1000)
    assert result.fills.height == 0
    record = order(result, 1)
    assert (record["status"], record["reason"]) == ("canceled", "canceled")
    assert record["ts_closed"] == bar_ns(2)  # while handling bar 1: at its close (adr/0020)


def test_cancel_of_an_unknown_order_is_rejected_and_changes_nothing() -> None:
    script = {0: [lambda s: s.buy(1.0, limit=50.0)], 1: [lambda s: s.cancel(99)]}
    seen = observed_engine([FLAT, FLAT, FLAT], scripted(script), cash=1000)
    result = seen.engine.run()
    assert [(r.order_id, r.reason) for r in seen.cancel_rejections] == [
        (99, "no open order with this id")
    ]
    assert order(result, 1)["reason"] == "end of data"


def test_strategy_open_orders_track_accept_fill_and_cancel() -> None:
    views: list[list[int]] = []
    script = {
        0: [lambda s: s.buy(1.0, limit=50.0), lambda s: s.buy(1.0)],
        1: [lambda s: views.append([o.order_id for o in s.open_orders]), lambda s: s.cancel(1)],
        2: [lambda s: views.append([o.order_id for o in s.open_orders])],
    }
    run_script([FLAT, FLAT, FLAT], script, cash=1000)
    assert views == [[1], []]


def test_every_order_of_a_mixed_script_ends_with_exactly_one_terminal_answer() -> None:
    rows = [FLAT, UP_WIDE, DOWN_WIDE, THIN, FLAT]
    script = {
        0: [
            lambda s: s.buy(1.0),  # filled
            lambda s: s.buy(1.0, limit=50.0),  # canceled by the strategy
            lambda s: s.buy(1.0, limit=60.0),  # canceled at end of data
            lambda s: s.buy(100.0),  # denied
            lambda s: s.buy(1.0, limit=50.0, time_in_force=TimeInForce.IOC),  # expired
        ],
        1: [lambda s: s.cancel(2), lambda s: s.sell(fraction=1.0, stop=96.0)],  # stop filled
        2: [lambda s: s.buy(fraction=0.5, time_in_force=TimeInForce.IOC)],  # partial, expired
    }
    seen = observed_engine(
        rows, scripted(script), cash=1000, slippage=VolumeShareSlippage(volume_limit=0.1)
    )
    result = seen.engine.run()
    statuses = dict(zip(result.orders["order_id"], result.orders["status"], strict=True))
    assert statuses == {
        1: "filled",
        2: "canceled",
        3: "canceled",
        4: "denied",
        5: "expired",
        6: "filled",
        7: "expired",
    }
    assert all(OrderStatus(s).is_terminal for s in statuses.values())
    assert dict(seen.terminal_answers) == dict.fromkeys(statuses, 1)
    assert [r.terminal_events for r in seen.recorder.orders.values()] == [1] * 7


def test_volume_share_partial_fills_stay_on_the_lot_grid_and_exit_leaves_no_dust() -> None:
    rows: list[Row] = [(100.0, 101.0, 99.0, 100.0, 3.0)] * 14
    result = run_script(
        rows,
        {0: [lambda s: s.buy(fraction=1.0)], 6: [lambda s: s.sell(fraction=1.0)]},
        cash=1_000.0,
        slippage=VolumeShareSlippage(volume_limit=0.7, price_impact=0.0),
        instrument=Instrument("BTC/USDT", lot_size=0.001),
    )
    buys = result.fills.filter(pl.col("side") == "buy")["quantity"].to_list()
    # Capacity 2.1 per bar; 1000 / 100 = 10 units: 2.1 on bars 1-4, then the rest on bar 5.
    assert buys == pytest.approx([2.1, 2.1, 2.1, 2.1, 1.6])
    assert all(abs(q / 0.001 - round(q / 0.001)) < 1e-6 for q in buys)
    sells = result.fills.filter(pl.col("side") == "sell")["quantity"].to_list()
    assert sum(sells) == pytest.approx(sum(buys))
    # The exit sells exactly what was bought: no lot-sized dust stays behind to block re-entry.
    assert result.equity["position_value"][-1] == 0.0
    assert result.orders["status"].to_list()[-1] == "filled"
