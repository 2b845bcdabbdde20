"""Linked orders on random bar paths: no one-cancels-other group ever has two filled legs, a
bracket's exits never outlive the position they protect, and signal mode gives the dense loop's
result bit for bit with brackets, trailing stops and orders that expire."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from backtester import Backtest, RunResult, Strategy, TimeInForce
from backtester.domain.enums import BUY, SELL
from backtester.domain.messages import Bar
from tests.engine_support import BAR_MS, NS_PER_MS, bars_frame
from tests.property.test_signal_mode import long_rows

# (kind, a percent or offset) per active row.
Plan = dict[int, tuple[str, float]]
KINDS = [
    "bracket",
    "bracket_trail",
    "oco",
    "gtd",
    "exit",
    "trail",
    "stop_limit_bracket",
    "trail_activation",
    "trail_limit_ticks",
    "mit",
]


def planned(plan: Plan) -> type[Strategy[Any]]:
    class Planned(Strategy[Any]):
        def on_start(self) -> None:
            self.oco_groups: list[list[int]] = []
            self.brackets: list[list[int]] = []

        def active_bars(self) -> np.ndarray:
            return np.array(sorted(plan), dtype=np.int64)

        def on_bar(self, bar: Bar) -> None:
            step = plan.get(bar.index)
            if step is None:
                return
            kind, size = step
            held = self.position
            close = bar.close
            if kind == "bracket":
                ids = self.bracket("buy", fraction=0.5, sl_pct=size, tp_pct=2 * size)
                self.brackets.append([i for i in ids[1:] if i is not None])
                self.oco_groups.append(self.brackets[-1])
            elif kind == "bracket_trail":
                ids = self.bracket("buy", fraction=0.5, sl=close - 3 * size, trail_pct=size)
                self.brackets.append([i for i in ids[1:] if i is not None])
                self.oco_groups.append(self.brackets[-1])
            elif kind == "stop_limit_bracket":
                ids = self.bracket(
                    "buy", fraction=0.3, limit=close - size, sl=close - 4 * size, tp=close + size
                )
                self.brackets.append([i for i in ids[1:] if i is not None])
                self.oco_groups.append(self.brackets[-1])
            elif kind == "oco" and held > 0:
                legs = self.oco(
                    self.order(SELL, fraction=1.0, limit=close + size, reduce_only=True),
                    self.order(SELL, fraction=1.0, stop=close - size, reduce_only=True),
                )
                self.oco_groups.append(legs)
            elif kind == "gtd":
                expire = self.ctx.now + int(3 * BAR_MS * NS_PER_MS)
                self.buy(
                    fraction=0.4,
                    limit=close - size,
                    time_in_force=TimeInForce.GTD,
                    expire_time=expire,
                )
            elif kind == "exit" and held > 0:
                self.sell(fraction=1.0)
            elif kind == "trail" and held > 0:
                self.trailing_stop(SELL, fraction=1.0, offset=size, reduce_only=True)
            elif kind == "trail_activation" and held > 0:
                self.trailing_stop(
                    SELL,
                    fraction=1.0,
                    offset=size,
                    unit="percent",
                    activation=close + size,
                    reduce_only=True,
                )
            elif kind == "trail_limit_ticks" and held > 0:
                self.trailing_stop(
                    SELL, fraction=1.0, offset=size, unit="ticks", limit_offset=size / 2
                )
            elif kind == "mit":
                below = self.order(
                    BUY, fraction=0.3, order_type="market_if_touched", stop=close - size
                )
                self.ctx.publish(below)

    return Planned


@st.composite
def plans(draw: st.DrawFn, bars: int) -> Plan:
    rows = draw(st.lists(st.integers(0, bars - 2), min_size=1, max_size=8, unique=True))
    return {
        row: (draw(st.sampled_from(KINDS)), draw(st.sampled_from([0.5, 1.0, 2.0, 4.0])))
        for row in sorted(rows)
    }


def run(rows: list[Any], plan: Plan, mode: str, intrabar: str) -> tuple[RunResult, Any]:
    engine = Backtest(
        bars_frame(rows), planned(plan), cash=10_000, fee_rate=0.001, intrabar=intrabar, mode=mode
    ).engine()
    return engine.run(), engine.strategy


@settings(max_examples=60, deadline=None)
@given(
    long_rows().flatmap(lambda rows: st.tuples(st.just(rows), plans(len(rows)))),
    st.sampled_from(["pessimistic", "ohlc", "optimistic"]),
)
def test_linked_orders_keep_their_promises_and_signal_mode_equals_dense(
    rows_and_plan: tuple[list[Any], Plan], intrabar: str
) -> None:
    rows, plan = rows_and_plan
    dense, strategy = run(rows, plan, "dense", intrabar)
    orders = {r["order_id"]: r for r in dense.orders.to_dicts()}
    for group in strategy.oco_groups:
        filled = [i for i in group if orders[i]["filled_quantity"] > 0.0]
        assert len(filled) <= 1, (group, [orders[i] for i in group])
    fills = dense.fills.with_columns(dense.fills["ts"].dt.epoch("ns")).to_dicts()
    after: list[float] = []
    position = 0.0
    for fill in fills:
        position += fill["quantity"] if fill["side"] == "buy" else -fill["quantity"]
        after.append(position)
    closed_at = dense.orders.with_columns(dense.orders["ts_closed"].dt.epoch("ns"))
    closed = {r["order_id"]: r["ts_closed"] for r in closed_at.to_dicts()}
    for legs in strategy.brackets:
        entry = legs[0] - 1
        first = next((k for k, f in enumerate(fills) if f["order_id"] == entry), None)
        if first is None:
            continue
        flat = next((k for k in range(first, len(fills)) if abs(after[k]) < 1e-12), None)
        if flat is None:
            continue
        for leg in legs:
            # When the position the exits protect is closed, none of them is left open: each is
            # closed by the close of the bar that flattened it (fills carry their bar's open).
            known = fills[flat]["ts"] + BAR_MS * NS_PER_MS
            assert closed[leg] is not None and closed[leg] <= known, orders[leg]
    held = np.zeros(1)
    for fill in dense.fills.to_dicts():
        held[0] += fill["quantity"] if fill["side"] == "buy" else -fill["quantity"]
        assert held[0] >= -1e-9  # reduce-only exits never take a spot account short
    tags = set(dense.fills["tag"].to_list())
    for tag in ("stop_loss", "take_profit", "trailing_stop"):
        event(f"{tag} filled" if tag in tags else f"no {tag}")
    signal, _ = run(rows, plan, "signal", intrabar)
    assert signal.digest == dense.digest
    assert signal.orders.equals(dense.orders)
    assert signal.trades.equals(dense.trades)
