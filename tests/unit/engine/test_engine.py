"""The Engine is built for its mode, chosen before anything runs, and runs once."""

from __future__ import annotations

import polars as pl
import pytest

from backtester import Backtest
from backtester.engine import SetupError
from backtester.strategies import SmaCross
from tests.engine_support import bars_frame, scripted

ROWS = [(100.0 + i % 7, 101.0 + i % 7, 99.0 + i % 7, 100.5 + i % 7, 10.0) for i in range(60)]


def test_a_plan_only_signal_strategy_gets_a_compiled_engine_without_event_modules() -> None:
    engine = Backtest(bars_frame(ROWS), SmaCross).engine(fast=3, slow=8)
    assert engine.mode == "compiled"
    assert engine.modules is None
    with pytest.raises(SetupError, match="no event modules"):
        _ = engine.events


def test_an_event_strategy_gets_wired_modules_before_it_runs() -> None:
    engine = Backtest(bars_frame(ROWS), scripted({0: [lambda s: s.buy(1.0)]})).engine()
    assert engine.mode == "dense"
    modules = engine.events
    assert modules.recorder.fills == []
    result = engine.run()
    assert len(modules.recorder.fills) == 1 == result.fills.height


def test_the_same_strategy_runs_identically_in_each_mode_it_is_built_for() -> None:
    digests = {}
    for mode in ("compiled", "signal", "dense"):
        engine = Backtest(bars_frame(ROWS), SmaCross, mode=mode).engine(fast=3, slow=8)
        assert engine.mode == mode
        digests[mode] = engine.run().digest
    assert len(set(digests.values())) == 1


def test_an_engine_runs_once() -> None:
    engine = Backtest(bars_frame(ROWS), SmaCross).engine(fast=3, slow=8)
    engine.run()
    with pytest.raises(SetupError, match="runs once"):
        engine.run()


@pytest.mark.parametrize("limit", [None, 1e-9])
def test_a_compiled_runs_orders_frame_is_built_when_read_and_agrees_with_its_statistics(
    limit: float | None,
) -> None:
    # Without denials the frame waits to be read; with them (a limit no order fits) it is built
    # for the denials' summary. Either way the statistics count what the frame holds.
    backtest = Backtest(bars_frame(ROWS), SmaCross, mode="compiled", max_position_quantity=limit)
    compiled = backtest.run(fast=3, slow=8)
    assert isinstance(compiled._orders, pl.DataFrame) == (limit is not None)
    events = Backtest(bars_frame(ROWS), SmaCross, mode="signal", max_position_quantity=limit).run(
        fast=3, slow=8
    )
    assert compiled.orders.equals(events.orders)
    assert compiled.orders is compiled.orders
    denied = compiled.orders.filter(pl.col("status") == "denied").height
    assert (compiled.stats["orders"], compiled.stats["orders_denied"]) == (
        compiled.orders.height,
        denied,
    )
    assert (denied > 0) == (limit is not None)
    assert compiled.stats == events.stats
