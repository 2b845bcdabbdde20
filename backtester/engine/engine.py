"""The engine: the one place that builds the clock, bus and modules, fixes their wiring order and runs them.

An `Engine` is built for its mode, chosen first from the strategy class and the run's models: on the
compiled order path only the strategy is built (its `on_start` computes the plan the kernel runs);
otherwise the event modules are wired on a bus and the loop visits every bar (dense) or only the bars
some module needs (signal). `run()` runs it once; the modules stay inspectable afterwards.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import polars as pl

from backtester.account.ledger import AccountLedger
from backtester.config import RunConfig
from backtester.core.bus import MessageBus
from backtester.core.clock import SimClock
from backtester.core.loop import gc_paused, tick_and_drain, tick_and_drain_sparse
from backtester.core.rng import module_rng
from backtester.data.bars import RepairReport
from backtester.domain.instrument import Instrument
from backtester.domain.models import FeeModel, SlippageModel
from backtester.engine import assembly, compiled_path
from backtester.engine.feed import Feed
from backtester.engine.recorder import Recorder
from backtester.engine.setup import EngineSetup, Mode, SetupError
from backtester.engine.timeframes import timeframe_views
from backtester.execution.venue import NEVER, SimulatedVenue
from backtester.metrics.stats import bar_interval_ns
from backtester.progress import Progress
from backtester.results import RunResult, build_result
from backtester.risk.engine import RiskEngine
from backtester.strategy.base import Strategy
from backtester.strategy.context import StrategyContext, StrategyError
from backtester.strategy.module import StrategyModule
from backtester.strategy.signal import SignalPlan, plan_of, runs_on_plan_only


@dataclass(frozen=True)
class EventModules:
    """The modules of an event-driven run, as wired on its bus."""

    bus: MessageBus
    strategy: StrategyModule
    risk: RiskEngine
    venue: SimulatedVenue
    ledger: AccountLedger
    recorder: Recorder


class Engine:
    """One backtest over validated frames (`ts` in ns, OHLCV) keyed by instrument symbol."""

    def __init__(
        self,
        data: dict[str, pl.DataFrame],
        instruments: dict[str, Instrument],
        strategy_type: type[Strategy[Any]],
        params: msgspec.Struct,
        fees: FeeModel,
        slippage: SlippageModel,
        setup: EngineSetup,
        repairs: list[RepairReport] | None = None,
        timeframes: Mapping[str, pl.DataFrame] | None = None,
    ) -> None:
        """`timeframes`: series for the higher timeframes the strategy declares, as `"1h"` (the
        primary instrument) or `"ETH/USDT@1h"`; others are resampled from the data."""
        quotes = sorted({instruments[s].quote for s in data})
        if len(quotes) != 1:
            raise SetupError(
                f"all instruments of a run must share one quote currency, got {quotes}"
            )
        if setup.initial_cash <= 0:
            raise SetupError(f"initial cash must be positive, got {setup.initial_cash}")
        self.data = data
        self.instruments = instruments
        self.params = params
        self.fees = fees
        self.slippage = slippage
        self.setup = setup
        self.repairs = repairs or []
        self.mode: Mode = _choose_mode(strategy_type, data, instruments, fees, slippage, setup)
        views = timeframe_views(data, strategy_type.timeframes, timeframes)
        self.clock = SimClock(start_ns=min(int(f["ts"][0]) for f in data.values()))
        self.modules: EventModules | None = None
        if self.mode == "compiled":
            # The kernel runs the plan; the strategy only computes it, and has no bus to order on.
            self.ctx = StrategyContext(
                self.clock, _no_orders, data, quotes[0], setup.initial_cash, views
            )
            self.strategy = strategy_type(self.ctx, params)
        else:
            bus = MessageBus(max_steps=setup.max_steps_per_tick)
            self.ctx = StrategyContext(
                self.clock, bus.publish, data, quotes[0], setup.initial_cash, views
            )
            self.strategy = strategy_type(self.ctx, params)
            self.modules = self._wire(bus, quotes[0])
        self._ran = False

    def _wire(self, bus: MessageBus, currency: str) -> EventModules:
        setup = self.setup
        modules = EventModules(
            bus=bus,
            strategy=StrategyModule(self.strategy, self.ctx),
            risk=RiskEngine(
                bus, self.clock, self.instruments, self.fees, setup.risk, setup.initial_cash
            ),
            venue=SimulatedVenue(
                bus,
                self.clock,
                self.instruments,
                self.fees,
                self.slippage,
                setup.fill,
                module_rng(setup.seed, "execution"),
                setup.initial_cash,
            ),
            ledger=AccountLedger(bus, self.clock, tuple(self.data), currency, setup.initial_cash),
            recorder=Recorder(),
        )
        # Delivery order within one message type is subscription order. The venue sees each bar before
        # the strategy, so orders resting from earlier bars fill before the strategy reacts to the bar;
        # the recorder subscribes first so the history is complete even if a later handler fails.
        modules.recorder.subscribe(bus)
        modules.venue.subscribe(bus)
        modules.strategy.subscribe(bus)
        modules.risk.subscribe(bus)
        modules.ledger.subscribe(bus)
        return modules

    @property
    def events(self) -> EventModules:
        """The event modules; a run on the compiled path has none."""
        if self.modules is None:
            raise SetupError("a run on the compiled order path has no event modules")
        return self.modules

    def run(self, *, progress: bool = False) -> RunResult:
        """`progress`: draw a progress bar over the bars (`backtester.progress.bar_wanted` says when a
        caller should ask for one); it changes nothing in the result."""
        if self._ran:
            raise SetupError("an Engine runs once; build another for the next run")
        self._ran = True
        bar = self._progress_bar() if progress else None
        try:
            if self.modules is None:
                self.strategy.on_start()
                plan = plan_of(self.strategy)
                assert plan is not None, "the compiled mode is chosen only for plan-only strategies"
                result = self._run_compiled(plan)
                if bar is not None:
                    bar.advance_to(bar.total or 0)
                return result
            return self._run_events(self.modules, bar)
        finally:
            if bar is not None:
                bar.close()

    def _progress_bar(self) -> Progress:
        bars = sum(frame.height for frame in self.data.values())
        label = f"{type(self.strategy).__name__} ({self.mode})"
        return Progress(bars, label=label, unit="bar", bar=True)

    def _run_compiled(self, plan: SignalPlan) -> RunResult:
        ((symbol, frame),) = self.data.items()
        return compiled_path.run_plan(
            plan,
            frame,
            self.instruments[symbol],
            self.fees,
            self.slippage,
            initial_cash=self.setup.initial_cash,
            trade_on_close=self.setup.fill.trade_on_close,
            strategy=type(self.strategy).__name__,
            params=self.params,
            seed=self.setup.seed,
            repairs=self.repairs,
            stats=self.setup.stats,
        )

    def _run_events(self, modules: EventModules, bar: Progress | None = None) -> RunResult:
        bus, venue, ledger, recorder = modules.bus, modules.venue, modules.ledger, modules.recorder
        clock = self.clock
        modules.strategy.start()
        bus.drain()
        feed = Feed(self.data)
        active = self._active_rows()
        with gc_paused():
            if active is None:
                bars = feed.bars() if bar is None else bar.iterate(feed.bars())
                tick_and_drain(clock, bus, feed.timestamps(), bars)
            else:
                (frame,) = self.data.values()
                venue.attach_ranges(
                    self.ctx.primary, frame["low"].to_numpy(), frame["high"].to_numpy()
                )
                next_row = _next_row(active, venue.next_wake)
                if bar is not None:
                    next_row = _reporting(next_row, bar, len(feed))
                tick_and_drain_sparse(clock, bus, feed.timestamps(), feed.bar_at, next_row)
                # The end of data is the last bar's time, visited or not (dense mode ends there too).
                clock.advance_to(feed.timestamps()[-1])
        modules.strategy.stop()
        bus.drain()
        venue.cancel_all("end of data")
        bus.drain()

        timeline = feed.timeline()
        known_at = feed.sample_times()
        cash, positions = ledger.sample(known_at)
        return build_result(
            strategy=type(self.strategy).__name__,
            params=self.params,
            seed=self.setup.seed,
            fills=recorder.fills_frame(),
            orders=recorder.orders_frame(),
            timeline=timeline,
            cash=cash,
            positions=positions,
            closes=_closes_on(known_at, self.data),
            initial_cash=self.setup.initial_cash,
            fees_paid=ledger.fees_paid,
            intrabar_decisions=venue.path_decided_bars,
            repairs=self.repairs,
            stats=self.setup.stats,
        )

    def _active_rows(self) -> np.ndarray | None:
        """The rows to visit in signal mode (after `on_start`), or None for the dense loop."""
        if self.mode != "signal":
            return None
        active = self.strategy.active_bars()
        if active is None:
            if self.setup.mode == "signal":
                raise SetupError(
                    "signal mode needs one stream and declared active bars: "
                    "declares no active_bars()"
                )
            self.mode = "dense"
            return None
        return np.unique(np.asarray(active, dtype=np.int64))  # sorted, as the scheduler needs


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
    """Build an `Engine` and run it."""
    return Engine(data, instruments, strategy_type, params, fees, slippage, setup, repairs).run()


def engine_for_config(
    cfg: RunConfig, data: dict[str, pl.DataFrame], repairs: list[RepairReport] | None = None
) -> Engine:
    """The engine for a decoded config over its loaded data (`backtester.runs.inputs.load_data`)."""
    strategy = assembly.strategy_class(cfg.strategy.name)
    return Engine(
        data,
        assembly.instruments(cfg),
        strategy,
        assembly.strategy_params(strategy, cfg.strategy),
        assembly.fee_model(cfg.fees),
        assembly.slippage_model(cfg.slippage),
        EngineSetup(
            initial_cash=cfg.cash, fill=cfg.fill, risk=cfg.risk, seed=cfg.seed, stats=cfg.stats
        ),
        repairs,
    )


def run_config(
    cfg: RunConfig, data: dict[str, pl.DataFrame], repairs: list[RepairReport] | None = None
) -> RunResult:
    """Run a decoded config over its loaded data."""
    return engine_for_config(cfg, data, repairs).run()


def _choose_mode(
    strategy_type: type[Strategy[Any]],
    data: dict[str, pl.DataFrame],
    instruments: dict[str, Instrument],
    fees: FeeModel,
    slippage: SlippageModel,
    setup: EngineSetup,
) -> Mode:
    """The mode the run takes, before anything is built: the compiled path where it applies (and
    was not ruled out), else signal mode where the strategy can declare active bars, else dense."""
    if setup.mode in ("auto", "compiled"):
        symbol = next(iter(data))
        why = (
            f"{strategy_type.__name__} is not a SignalStrategy with only its plan's hooks"
            if not runs_on_plan_only(strategy_type)
            else compiled_path.unsupported(
                len(data), instruments[symbol], fees, slippage, setup.risk
            )
        )
        if why is None:
            return "compiled"
        if setup.mode == "compiled":
            raise SetupError(f"the compiled order path does not apply: {why}")
    if setup.mode == "dense":
        return "dense"
    declares = strategy_type.active_bars is not Strategy.active_bars
    if len(data) == 1 and declares:
        return "signal"
    if setup.mode == "signal":
        why = "runs on several streams" if len(data) != 1 else "declares no active_bars()"
        raise SetupError(f"signal mode needs one stream and declared active bars: {why}")
    return "dense"


def _no_orders(message: object) -> None:
    raise StrategyError(
        f"{type(message).__name__}: a strategy on the compiled order path places no orders itself"
    )


def _next_row(active: np.ndarray, venue_wake: Callable[[int], int]) -> Callable[[int], int]:
    """The next row after `i` that the strategy or the venue needs."""
    rows = active.tolist()
    count = len(rows)

    def next_row(i: int) -> int:
        k = bisect_right(rows, i)
        strategy_row = rows[k] if k < count else NEVER
        return min(strategy_row, venue_wake(i))

    return next_row


def _reporting(next_row: Callable[[int], int], bar: Progress, rows: int) -> Callable[[int], int]:
    """`next_row`, telling the bar how far the sparse loop has got."""

    def reported(i: int) -> int:
        following = next_row(i)
        bar.advance_to(min(following, rows))
        return following

    return reported


def _closes_on(known_at: np.ndarray, data: dict[str, pl.DataFrame]) -> dict[str, np.ndarray]:
    """Each instrument's latest known close at every timeline point (`known_at`: when the point's
    state is known): that of its last bar closed by then (before its first: its first close)."""
    closes: dict[str, np.ndarray] = {}
    for symbol, frame in data.items():
        ts = frame["ts"].to_numpy()
        close = frame["close"].to_numpy()
        closed_at = ts + bar_interval_ns(ts)
        if len(closed_at) == len(known_at) and np.array_equal(closed_at, known_at):
            closes[symbol] = close
            continue
        at = np.searchsorted(closed_at, known_at, side="right") - 1
        closes[symbol] = close[np.maximum(at, 0)]
    return closes
