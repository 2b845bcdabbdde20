"""Brackets (OTO + OCO), one-cancels-other groups, reduce-only exits and the same-bar policy, pinned
on hand-built bars."""

from __future__ import annotations

from typing import Any

import polars as pl

from backtester import MakerTakerFee, VolumeShareSlippage
from backtester.domain.enums import BUY, SELL
from backtester.results import RunResult
from tests.engine_support import Row, run_script

FLAT: Row = (100.0, 100.0, 100.0, 100.0, 1000.0)
QUIET: Row = (100.0, 101.0, 99.0, 100.0, 1000.0)
BOTH: Row = (100.0, 106.0, 94.0, 104.0, 1000.0)  # an up bar that reaches 95 and 105


def statuses(result: RunResult) -> dict[int, tuple[str, str]]:
    return {r["order_id"]: (r["status"], r["reason"]) for r in result.orders.to_dicts()}


def sells(result: RunResult) -> list[tuple[int, float, float]]:
    rows = result.fills.filter(side="sell").to_dicts()
    return [(r["order_id"], r["price"], r["quantity"]) for r in rows]


def test_bracket_exits_go_live_when_the_entry_fills_and_the_stop_loss_cancels_the_take_profit() -> (
    None
):
    rows = [FLAT, QUIET, (100.0, 100.5, 94.0, 95.0, 1000.0), FLAT]
    result = run_script(rows, {0: [lambda s: s.buy(2.0, sl=95.0, tp=105.0)]}, cash=1000)
    assert sells(result) == [(2, 95.0, 2.0)]
    assert statuses(result)[3] == ("canceled", "one-cancels-other: order 2 filled")
    trade = result.trades.to_dicts()[0]
    assert (trade["entry_tag"], trade["exit_reason"], trade["bars_held"]) == ("", "stop_loss", 1)


def test_on_a_bar_that_reaches_both_levels_the_stop_loss_fills_first_by_default() -> None:
    rows = [FLAT, QUIET, BOTH, FLAT]
    result = run_script(rows, {0: [lambda s: s.buy(1.0, sl=95.0, tp=105.0)]}, cash=1000)
    assert sells(result) == [(2, 95.0, 1.0)]
    assert result.stats["intrabar_path_decisions"] == 1
    # The optimistic path takes the take-profit; the bar's direction (up: low first) the stop.
    optimistic = run_script(
        rows, {0: [lambda s: s.buy(1.0, sl=95.0, tp=105.0)]}, cash=1000, intrabar="optimistic"
    )
    assert sells(optimistic) == [(3, 105.0, 1.0)]


def test_exits_can_fill_on_the_entry_bar_adverse_one_first() -> None:
    result = run_script([FLAT, BOTH, FLAT], {0: [lambda s: s.buy(1.0, sl=95.0, tp=105.0)]})
    fills = result.fills.to_dicts()
    assert [(f["order_id"], f["price"]) for f in fills] == [(1, 100.0), (2, 95.0)]
    assert fills[0]["ts"] == fills[1]["ts"]
    assert result.trades["exit_reason"].to_list() == ["stop_loss"]


def test_percent_exits_are_priced_from_the_fill() -> None:
    rows = [FLAT, (102.0, 102.5, 101.5, 102.0, 1000.0), (102.0, 108.0, 101.0, 107.0, 1000.0)]
    script = {0: [lambda s: s.buy(1.0, sl_pct=2.0, tp_pct=5.0)]}
    result = run_script(rows, script, cash=1000)
    legs = result.orders.filter(pl.col("order_id") > 1).sort("order_id").to_dicts()
    stop, target = 102.0 * (1.0 - 2.0 / 100.0), 102.0 * (1.0 + 5.0 / 100.0)
    assert [(leg["stop_price"], leg["limit_price"]) for leg in legs] == [
        (stop, None),
        (None, target),
    ]
    assert sells(result) == [(3, target, 1.0)]
    assert result.trades["exit_reason"].to_list() == ["take_profit"]


def test_a_signal_exit_cancels_the_bracket_exits_when_the_position_closes() -> None:
    rows = [FLAT, QUIET, QUIET, FLAT, FLAT]
    script = {0: [lambda s: s.buy(1.0, sl=90.0, tp=110.0)], 1: [lambda s: s.sell(fraction=1.0)]}
    result = run_script(rows, script, cash=1000)
    assert statuses(result)[2] == ("canceled", "position closed")
    assert statuses(result)[3] == ("canceled", "position closed")
    assert result.trades["exit_reason"].to_list() == ["signal"]


def test_an_entry_canceled_unfilled_takes_its_exits_with_it() -> None:
    rows = [FLAT, QUIET, QUIET]
    script = {0: [lambda s: s.buy(1.0, limit=90.0, sl=85.0, tp=95.0)], 1: [lambda s: s.cancel(1)]}
    result = run_script(rows, script, cash=1000)
    assert statuses(result) == {
        1: ("canceled", "canceled"),
        2: ("canceled", "parent order 1 closed unfilled"),
        3: ("canceled", "parent order 1 closed unfilled"),
    }


def test_a_denied_entry_denies_its_exits() -> None:
    result = run_script([FLAT, FLAT], {0: [lambda s: s.buy(100.0, sl=90.0, tp=110.0)]}, cash=1000)
    assert {k: v[0] for k, v in statuses(result).items()} == {1: "denied", 2: "denied", 3: "denied"}
    assert statuses(result)[2][1].startswith("linked order 1 denied: insufficient cash")


def test_one_cancels_other_legs_never_both_fill_even_on_a_partial_fill() -> None:
    # Volume share fills 10% of a bar: the first leg to trigger fills partly, the other is gone.
    deep: Row = (100.0, 100.0, 100.0, 100.0, 1e6)
    rows = [deep, deep, BOTH, BOTH, BOTH]

    def oco(s: Any) -> None:
        s.oco(s.order(SELL, 5.0, stop=95.0), s.order(SELL, 5.0, limit=105.0))

    result = run_script(
        rows,
        {0: [lambda s: s.buy(5.0)], 1: [oco]},
        cash=1000,
        slippage=VolumeShareSlippage(volume_limit=0.002, price_impact=0.0),
    )
    filled_ids = {f["order_id"] for f in result.fills.filter(side="sell").to_dicts()}
    assert filled_ids == {2}
    assert statuses(result)[3][0] == "canceled"


def test_reduce_only_is_capped_to_the_position_and_denied_when_flat() -> None:
    rows = [FLAT, FLAT, FLAT, FLAT]
    script = {
        0: [lambda s: s.buy(1.0), lambda s: s.sell(1.0, reduce_only=True)],
        1: [lambda s: s.sell(3.0, reduce_only=True)],
    }
    result = run_script(rows, script, cash=1000)
    assert statuses(result)[2][0] == "denied"
    assert result.orders.filter(order_id=2)["code"].to_list() == ["reduce_only"]
    assert sells(result) == [(3, 100.0, 1.0)]
    assert result.equity["position_value"][-1] == 0.0


def test_a_marketable_limit_pays_the_taker_fee_and_a_resting_one_the_maker_fee() -> None:
    fees = MakerTakerFee(maker=0.001, taker=0.004)
    rows = [FLAT, (100.0, 101.0, 96.0, 100.0, 1000.0), FLAT]
    script = {0: [lambda s: s.buy(1.0, limit=101.0), lambda s: s.buy(1.0, limit=97.0)]}
    result = run_script(rows, script, cash=1000, fees=fees)
    fills = {f["order_id"]: f for f in result.fills.to_dicts()}
    assert (fills[1]["price"], fills[1]["liquidity"]) == (100.0, "taker")
    assert fills[1]["fee"] == 100.0 * 0.004
    assert (fills[2]["price"], fills[2]["liquidity"]) == (97.0, "maker")
    assert fills[2]["fee"] == 97.0 * 0.001


def test_post_only_is_denied_when_marketable_and_canceled_when_it_would_take_at_the_open() -> None:
    rows = [FLAT, (98.0, 99.0, 97.0, 98.0, 1000.0), FLAT]
    script = {
        0: [
            lambda s: s.buy(1.0, limit=100.0, post_only=True),  # at the last price: denied
            lambda s: s.buy(1.0, limit=99.0, post_only=True),  # the next open gaps below it
            lambda s: s.buy(1.0, limit=97.5, post_only=True),  # rests, then fills as maker
        ]
    }
    result = run_script(rows, script, cash=1000)
    seen = statuses(result)
    assert seen[1][0] == "denied" and "would take liquidity" in seen[1][1]
    assert seen[2] == ("canceled", "post-only order would take liquidity")
    assert [(f["order_id"], f["liquidity"]) for f in result.fills.to_dicts()] == [(3, "maker")]


def test_side_constants_make_orders() -> None:
    result = run_script([FLAT, FLAT], {0: [lambda s: s.ctx.publish(s.order(BUY, 1.0))]})
    assert result.fills.height == 1
