"""Composition root: the one place that builds the clock, bus and modules and fixes their wiring order."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import Any, Literal

import msgspec
import numpy as np
import polars as pl

from backtester import assembly, compiled_run
from backtester.account.ledger import AccountLedger
from backtester.config import FillConfig, RiskConfig, RunConfig
from backtester.core.bus import MessageBus
from backtester.core.clock import SimClock
from backtester.core.loop import gc_paused, tick_and_drain, tick_and_drain_sparse
from backtester.core.rng import module_rng
from backtester.data.bars import RepairReport
from backtester.domain.instrument import Instrument
from backtester.domain.models import FeeModel, SlippageModel
from backtester.execution.venue import NEVER, SimulatedVenue
from backtester.feed import Feed
from backtester.recorder import Recorder
from backtester.results import RunResult, build_result, fills_frame, orders_frame
from backtester.risk.engine import RiskEngine
from backtester.strategy.base import Strategy
from backtester.strategy.context import StrategyContext
from backtester.strategy.module import StrategyModule
from backtester.strategy.signal import plan_of

Mode = Literal["auto", "dense", "signal", "compiled"]


class EngineSetup(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`mode`: "dense" visits every bar; "signal" only the bars the strategy declares active
    (`Strategy.active_bars`) and those where a resting order can fill; "compiled" runs a
    `SignalStrategy`'s plan on the compiled order path (adr/0011). All give identical results.
    "auto" takes the compiled path where it applies, else signal mode when the strategy declares
    active bars and the run has one stream, else dense."""

    initial_cash: float = 10_000.0
    fill: FillConfig = FillConfig()
    risk: RiskConfig = RiskConfig()
    seed: int = 0
    max_steps_per_tick: int = 100_000
    mode: Mode = "auto"


class SetupError(ValueError):
    pass


def run_engine(
    data: dict[str, pl.DataFrame],
    instruments: dict[str, Instrument],
    strategy_type: type[Strategy[Any]],
    params: msgspec.Struct,
    fees: FeeModel,
    slippage: SlippageModel,
    setup: EngineSetup,
    repairs: list[RepairReport] | None = None,
) -> RunResult:
    """Run one backtest over validated frames (`ts` in ns, OHLCV) keyed by instrument symbol."""
    quotes = sorted({instruments[s].quote for s in data})
    if len(quotes) != 1:
        raise SetupError(f"all instruments of a run must share one quote currency, got {quotes}")
    if setup.initial_cash <= 0:
        raise SetupError(f"initial cash must be positive, got {setup.initial_cash}")
    clock = SimClock(start_ns=min(int(f["ts"][0]) for f in data.values()))
    bus = MessageBus(max_steps=setup.max_steps_per_tick)
    symbols = tuple(data)

    ctx = StrategyContext(clock, bus.publish, data, quotes[0], setup.initial_cash)
    strategy = strategy_type(ctx, params)
    strategy_module = StrategyModule(strategy, ctx)
    risk = RiskEngine(bus, clock, instruments, fees, setup.risk, setup.initial_cash)
    venue = SimulatedVenue(
        bus,
        clock,
        instruments,
        fees,
        slippage,
        setup.fill,
        module_rng(setup.seed, "execution"),
        setup.initial_cash,
    )
    ledger = AccountLedger(bus, clock, symbols, quotes[0], setup.initial_cash)
    recorder = Recorder()

    # Delivery order within one message type is subscription order. The venue sees each bar before the
    # strategy, so orders resting from earlier bars fill before the strategy reacts to the bar; the
    # recorder subscribes first so the history is complete even if a later handler fails.
    recorder.subscribe(bus)
    venue.subscribe(bus)
    strategy_module.subscribe(bus)
    risk.subscribe(bus)
    ledger.subscribe(bus)

    strategy_module.start()
    bus.drain()
    compiled = _compiled_result(
        strategy, data, instruments, fees, slippage, setup, params, repairs or []
    )
    if compiled is not None:
        return compiled
    feed = Feed(data)
    active = _active_rows(strategy, setup.mode, len(data))
    with gc_paused():
        if active is None:
            tick_and_drain(clock, bus, feed.timestamps(), feed.bars())
        else:
            (frame,) = data.values()
            venue.attach_ranges(ctx.primary, frame["low"].to_numpy(), frame["high"].to_numpy())
            tick_and_drain_sparse(
                clock, bus, feed.timestamps(), feed.bar_at, _next_row(active, venue.next_wake)
            )
            # The end of data is the last bar's time, visited or not (dense mode ends there too).
            clock.advance_to(feed.timestamps()[-1])
    strategy_module.stop()
    bus.drain()
    venue.cancel_all("end of data")
    bus.drain()

    timeline = feed.timeline()
    cash, positions = ledger.sample(timeline)
    closes = _closes_on(timeline, data)
    return build_result(
        strategy=strategy_type.__name__,
        params=params,
        seed=setup.seed,
        fills=fills_frame(recorder.fills),
        orders=orders_frame(recorder),
        timeline=timeline,
        cash=cash,
        positions=positions,
        closes=closes,
        initial_cash=setup.initial_cash,
        fees_paid=ledger.fees_paid,
        intrabar_decisions=venue.path_decided_bars,
        repairs=repairs or [],
    )


def run_config(
    cfg: RunConfig, data: dict[str, pl.DataFrame], repairs: list[RepairReport] | None = None
) -> RunResult:
    """Run a decoded config over its loaded data (`backtester.runs.inputs.load_data`)."""
    strategy = assembly.strategy_class(cfg.strategy.name)
    return run_engine(
        data,
        assembly.instruments(cfg),
        strategy,
        assembly.strategy_params(strategy, cfg.strategy),
        assembly.fee_model(cfg.fees),
        assembly.slippage_model(cfg.slippage),
        EngineSetup(initial_cash=cfg.cash, fill=cfg.fill, risk=cfg.risk, seed=cfg.seed),
        repairs,
    )


def _compiled_result(
    strategy: Strategy[Any],
    data: dict[str, pl.DataFrame],
    instruments: dict[str, Instrument],
    fees: FeeModel,
    slippage: SlippageModel,
    setup: EngineSetup,
    params: msgspec.Struct,
    repairs: list[RepairReport],
) -> RunResult | None:
    """The run on the compiled order path, or None where it does not apply (and was not demanded)."""
    if setup.mode not in ("auto", "compiled"):
        return None
    plan = plan_of(strategy)
    symbol = next(iter(data))
    why = (
        f"{type(strategy).__name__} is not a SignalStrategy with only its plan's hooks"
        if plan is None
        else compiled_run.unsupported(len(data), instruments[symbol], fees, slippage, setup.risk)
    )
    if why is not None:
        if setup.mode == "compiled":
            raise SetupError(f"the compiled order path does not apply: {why}")
        return None
    assert plan is not None
    return compiled_run.run_plan(
        plan,
        data[symbol],
        instruments[symbol],
        fees,
        slippage,
        initial_cash=setup.initial_cash,
        trade_on_close=setup.fill.trade_on_close,
        strategy=type(strategy).__name__,
        params=params,
        seed=setup.seed,
        repairs=repairs,
    )


def _active_rows(strategy: Strategy[Any], mode: Mode, streams: int) -> np.ndarray | None:
    """The rows to visit in signal mode, or None for the dense loop."""
    if mode == "dense":
        return None
    active = strategy.active_bars()
    if active is None or streams != 1:
        if mode == "signal":
            why = "declares no active_bars()" if active is None else "runs on several streams"
            raise SetupError(f"signal mode needs one stream and declared active bars: {why}")
        return None
    rows = np.unique(np.asarray(active, dtype=np.int64))  # sorted, as the scheduler needs
    return rows


def _next_row(active: np.ndarray, venue_wake: Callable[[int], int]) -> Callable[[int], int]:
    """The next row after `i` that the strategy or the venue needs."""
    rows = active.tolist()
    count = len(rows)

    def next_row(i: int) -> int:
        k = bisect_right(rows, i)
        strategy_row = rows[k] if k < count else NEVER
        return min(strategy_row, venue_wake(i))

    return next_row


def _closes_on(timeline: np.ndarray, data: dict[str, pl.DataFrame]) -> dict[str, np.ndarray]:
    """Each instrument's latest close at every timeline point (before its first bar: its first close)."""
    closes: dict[str, np.ndarray] = {}
    for symbol, frame in data.items():
        ts = frame["ts"].to_numpy()
        close = frame["close"].to_numpy()
        if len(ts) == len(timeline) and np.array_equal(ts, timeline):
            closes[symbol] = close
            continue
        at = np.searchsorted(ts, timeline, side="right") - 1
        closes[symbol] = close[np.maximum(at, 0)]
    return closes
