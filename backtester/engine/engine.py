"""The engine: the one place that builds the clock, bus and modules, fixes their wiring order and runs them.

An `Engine` is built for its mode, chosen first from the strategy class and the run's models: on the
compiled order path only the strategy is built (its `on_start` computes the plan the kernel runs);
otherwise the event modules are wired on a bus and the loop visits every bar (dense) or only the bars
some module needs (signal). `run()` runs it once; the modules stay inspectable afterwards.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import polars as pl

from backtester.account.ledger import AccountLedger
from backtester.accounting.accounts import Account, Bookings, CashAccount, MarginAccount
from backtester.config import RunConfig
from backtester.core.bus import MessageBus
from backtester.core.clock import SimClock
from backtester.core.loop import gc_paused, tick_and_drain_sparse
from backtester.core.rng import module_rng
from backtester.data.bars import RepairReport
from backtester.domain.instrument import Instrument
from backtester.domain.marks import MarkBars
from backtester.domain.messages import FundingRate
from backtester.domain.models import FeeModel, SlippageModel
from backtester.engine import assembly, compiled_path
from backtester.engine.feed import Feed
from backtester.engine.market import Scheduled, align_marks, expiry_schedule, funding_schedule
from backtester.engine.recorder import Recorder
from backtester.engine.setup import AccountKind, EngineSetup, Mode, SetupError
from backtester.engine.timeframes import timeframe_views
from backtester.execution.venue import NEVER, SimulatedVenue
from backtester.metrics.stats import bar_interval_ns
from backtester.progress import Progress
from backtester.results import Books, DeferredOrders, RunResult, build_result
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
        *,
        marks: dict[str, pl.DataFrame] | None = None,
        funding: dict[str, pl.DataFrame] | None = None,
        timeframes: Mapping[str, pl.DataFrame] | None = None,
    ) -> None:
        """`marks` and `funding`: mark-price candles and funding rates by symbol, for contracts.
        `timeframes`: series for the higher timeframes the strategy declares, as `"1h"` (the
        primary instrument) or `"ETH/USDT@1h"`; the others are resampled from the data."""
        traded = {s: instruments[s] for s in data}
        currencies = sorted({i.settle if i.is_contract else i.quote for i in traded.values()})
        if len(currencies) != 1:
            raise SetupError(
                f"all instruments of a run must share one quote currency, got {currencies}"
            )
        if setup.initial_cash <= 0:
            raise SetupError(f"initial cash must be positive, got {setup.initial_cash}")
        self.account_kind: AccountKind = _account_kind(traded, setup.account)
        _check_shorts(strategy_type, params, traded, self.account_kind)
        self.data = data
        self.instruments = traded
        self.params = params
        self.fees = fees
        self.slippage = slippage
        self.setup = setup
        self.repairs = repairs or []
        self.marks, self.scheduled = _market(data, traded, marks or {}, funding or {})
        # Which instruments are marked by a mark series (the others by their last price).
        self.mark_series = sorted(marks or {})
        self.mode: Mode = _choose_mode(
            strategy_type, params, data, traded, fees, slippage, setup, self.account_kind
        )
        views = timeframe_views(data, strategy_type.timeframes, timeframes)
        self.clock = SimClock(start_ns=min(int(f["ts"][0]) for f in data.values()))
        self.modules: EventModules | None = None
        currency = self.currency = currencies[0]
        bus = None if self.mode == "compiled" else MessageBus(max_steps=setup.max_steps_per_tick)
        # On the compiled path the kernel runs the plan: the strategy only computes it, and has no
        # bus to order on.
        self.ctx = StrategyContext(
            self.clock,
            _no_orders if bus is None else bus.publisher(),
            data,
            currency,
            self._new_account(),
            self.marks,
            views,
        )
        self.strategy = strategy_type(self.ctx, params)
        if bus is not None:
            self.modules = self._wire(bus, currency)
        self._ran = False

    def _new_account(self) -> Account:
        kind = MarginAccount if self.account_kind == "margin" else CashAccount
        return kind(self.instruments, self.setup.initial_cash)

    def _wire(self, bus: MessageBus, currency: str) -> EventModules:
        setup = self.setup
        # The venue's bookings, which the ledger takes instead of booking each fill again.
        bookings: Bookings = deque()
        modules = EventModules(
            bus=bus,
            strategy=StrategyModule(self.strategy, self.ctx),
            risk=RiskEngine(
                bus,
                self.clock,
                self.instruments,
                self.fees,
                setup.risk,
                self.ctx.account,
                self.marks,
            ),
            venue=SimulatedVenue(
                bus,
                self.clock,
                self.instruments,
                self.fees,
                self.slippage,
                setup.fill,
                module_rng(setup.seed, "execution"),
                self._new_account(),
                self.marks,
                bookings,
            ),
            # One client-side account: the ledger writes it, risk and the strategy read it; the
            # venue keeps its own, as an exchange does (adr/0023), and hands its bookings over
            # (adr/0029).
            ledger=AccountLedger(bus, self.clock, self.ctx.account, currency, bookings),
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
                try:
                    result = self._run_compiled(plan)
                except compiled_path.Declined as why:
                    if self.setup.mode == "compiled":
                        raise SetupError(f"the compiled order path does not apply: {why}") from None
                    result = self._run_events(self._events_instead(), bar)
                if bar is not None:
                    bar.advance_to(bar.total or 0)
            else:
                result = self._run_events(self.modules, bar)
        finally:
            if bar is not None:
                bar.close()
        result.marked_by = {s: "mark" if s in self.mark_series else "last" for s in self.data}
        return result

    def _progress_bar(self) -> Progress:
        bars = sum(frame.height for frame in self.data.values())
        label = f"{type(self.strategy).__name__} ({self.mode})"
        return Progress(bars, label=label, unit="bar", bar=True)

    def _events_instead(self) -> EventModules:
        """The event side, built for a run the compiled path handed back: a fresh strategy and
        context on a bus, in the mode the run would have taken without the compiled path."""
        self.mode = _event_mode(type(self.strategy), self.data, self.setup)
        bus = MessageBus(max_steps=self.setup.max_steps_per_tick)
        self.ctx = StrategyContext(
            self.clock, bus.publisher(), self.data, self.currency, self._new_account(), self.marks
        )
        self.strategy = type(self.strategy)(self.ctx, self.params)
        self.modules = self._wire(bus, self.currency)
        return self.modules

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
            account=self.account_kind,
            marks=self.marks[symbol],
            funding=[
                e for s, _, _, e in self.scheduled if s == symbol and isinstance(e, FundingRate)
            ],
            risk=self.setup.risk,
        )

    def _run_events(self, modules: EventModules, bar: Progress | None = None) -> RunResult:
        bus, venue, ledger, recorder = modules.bus, modules.venue, modules.ledger, modules.recorder
        clock = self.clock
        modules.strategy.start()
        bus.drain()
        feed = Feed(self.data)
        placed = feed.scheduled_ticks(self.scheduled)
        active = self._active_rows()
        with gc_paused():
            if active is None:
                ticks = feed.ticks(placed)
                bus.deliver_each(clock, ticks if bar is None else bar.iterate(ticks))
            else:
                (frame,) = self.data.values()
                venue.attach_ranges(
                    self.ctx.primary,
                    frame["low"].to_numpy(),
                    frame["high"].to_numpy(),
                    frame["ts"].to_numpy(),
                )
                next_row = _next_row(active, venue.next_wake)
                if bar is not None:
                    next_row = _reporting(next_row, bar, len(feed))
                time_at = feed.time_at()
                rows = len(feed)
                tick_and_drain_sparse(clock, bus, rows, time_at, feed.bar_maker(), next_row, placed)
                # The end of data is the last bar's time, visited or not (dense mode ends there too).
                clock.advance_to(max(clock.now, time_at(rows - 1)))
        modules.strategy.stop()
        bus.drain()
        venue.cancel_all("end of data")
        bus.drain()

        timeline = feed.timeline()
        # Each point's state as known once its bars have closed (adr/0020).
        known_at = feed.sample_times()
        sampled = ledger.sample(known_at)
        return build_result(
            strategy=type(self.strategy).__name__,
            params=self.params,
            seed=self.setup.seed,
            fills=recorder.deferred_fills(),
            # Built when first read (adr/0026): the statistics need the count, and the frame
            # only when an order was denied.
            orders=DeferredOrders(recorder.orders_frame, len(recorder.orders), recorder.denied > 0),
            timeline=timeline,
            books=Books(sampled.cash, sampled.positions, sampled.cost_basis, sampled.funding),
            marks=_known_on(known_at, self.data, {s: m.close for s, m in self.marks.items()}),
            closes=_known_on(known_at, self.data, _column(self.data, "close")),
            initial_cash=self.setup.initial_cash,
            fees_paid=ledger.account.fees_paid,
            intrabar_decisions=venue.path_decided_bars,
            repairs=self.repairs,
            stats=self.setup.stats,
            account=self.account_kind,
            multipliers={s: i.contract_size for s, i in self.instruments.items()},
            funding=recorder.funding_frame(),
            liquidations=venue.liquidations,
            ranges={
                s: (f["ts"].to_numpy(), f["high"].to_numpy(), f["low"].to_numpy())
                for s, f in self.data.items()
            },
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


def engine_for_config(
    cfg: RunConfig,
    data: dict[str, pl.DataFrame],
    repairs: list[RepairReport] | None = None,
    *,
    marks: dict[str, pl.DataFrame] | None = None,
    funding: dict[str, pl.DataFrame] | None = None,
    instruments: dict[str, Instrument] | None = None,
    timeframes: Mapping[str, pl.DataFrame] | None = None,
) -> Engine:
    """The engine for a decoded config over its loaded data (`backtester.runs.inputs.load_data`,
    which also resolves the config's instruments; without them they are resolved here), and its
    given higher-timeframe series by `SYMBOL@timeframe`."""
    strategy = assembly.strategy_class(cfg.strategy.name)
    setup = EngineSetup(
        initial_cash=cfg.cash,
        account=cfg.account.kind,
        fill=cfg.fill,
        risk=cfg.risk,
        seed=cfg.seed,
        stats=cfg.stats,
    )
    return Engine(
        data,
        assembly.instruments(cfg) if instruments is None else instruments,
        strategy,
        assembly.strategy_params(strategy, cfg.strategy),
        assembly.fee_model(cfg.fees),
        assembly.slippage_model(cfg.slippage),
        setup,
        repairs,
        marks=marks,
        funding=funding,
        timeframes=timeframes,
    )


def run_config(
    cfg: RunConfig,
    data: dict[str, pl.DataFrame],
    repairs: list[RepairReport] | None = None,
    *,
    marks: dict[str, pl.DataFrame] | None = None,
    funding: dict[str, pl.DataFrame] | None = None,
    instruments: dict[str, Instrument] | None = None,
    timeframes: Mapping[str, pl.DataFrame] | None = None,
) -> RunResult:
    """Run a decoded config over its loaded data."""
    return engine_for_config(
        cfg,
        data,
        repairs,
        marks=marks,
        funding=funding,
        instruments=instruments,
        timeframes=timeframes,
    ).run()


def _choose_mode(
    strategy_type: type[Strategy[Any]],
    params: msgspec.Struct,
    data: dict[str, pl.DataFrame],
    instruments: dict[str, Instrument],
    fees: FeeModel,
    slippage: SlippageModel,
    setup: EngineSetup,
    account: AccountKind,
) -> Mode:
    """The mode the run takes, before anything is built: the compiled path where it applies (and
    was not ruled out), else signal mode where the strategy can declare active bars, else dense."""
    if setup.mode in ("auto", "compiled"):
        symbol = next(iter(data))
        why = (
            f"{strategy_type.__name__} is not a SignalStrategy with only its plan's hooks"
            if not runs_on_plan_only(strategy_type)
            else compiled_path.unsupported(
                len(data),
                instruments[symbol],
                fees,
                slippage,
                setup.risk,
                account=account,
                shorts=strategy_type.shorts(params),
            )
        )
        if why is None:
            return "compiled"
        if setup.mode == "compiled":
            raise SetupError(f"the compiled order path does not apply: {why}")
    return _event_mode(strategy_type, data, setup)


def _event_mode(
    strategy_type: type[Strategy[Any]], data: dict[str, pl.DataFrame], setup: EngineSetup
) -> Mode:
    """Signal mode where the strategy can declare active bars, else dense."""
    if setup.mode == "dense":
        return "dense"
    declares = strategy_type.active_bars is not Strategy.active_bars
    if len(data) == 1 and declares:
        return "signal"
    if setup.mode == "signal":
        why = "runs on several streams" if len(data) != 1 else "declares no active_bars()"
        raise SetupError(f"signal mode needs one stream and declared active bars: {why}")
    return "dense"


def _account_kind(instruments: dict[str, Instrument], asked: AccountKind | None) -> AccountKind:
    """The account a run books into: as asked, else margin for contracts and cash for spot."""
    contracts = sorted(s for s, i in instruments.items() if i.is_contract)
    spot = sorted(s for s, i in instruments.items() if not i.is_contract)
    for symbol in contracts:
        if not instruments[symbol].linear:
            raise SetupError(
                f"{symbol}: inverse (coin-margined) contracts are not supported: their profit is "
                "in the base coin; use a linear contract settled in the quote currency"
            )
    kind: AccountKind = asked or ("margin" if contracts else "cash")
    if kind == "cash" and contracts:
        raise SetupError(
            f"{contracts[0]} is a {instruments[contracts[0]].kind} contract, which needs a margin "
            'account ([account] kind = "margin", or account="margin" in a notebook)'
        )
    if kind == "margin" and spot:
        raise SetupError(
            f"{spot[0]} is a spot instrument: a margin account trades contracts (kind = "
            '"perpetual" or "future"); spot margin trading is not modeled'
        )
    return kind


def _check_shorts(
    strategy_type: type[Strategy[Any]],
    params: msgspec.Struct,
    instruments: dict[str, Instrument],
    account: AccountKind,
) -> None:
    if account == "cash" and strategy_type.shorts(params):
        symbol = next(iter(instruments))
        raise SetupError(
            f"strategy.params.short: {strategy_type.__name__} goes short, but {symbol} is a spot "
            'instrument on a cash account; shorts need a contract (kind = "perpetual") on a '
            'margin account ([account] kind = "margin")'
        )


def _market(
    data: dict[str, pl.DataFrame],
    instruments: dict[str, Instrument],
    marks: dict[str, pl.DataFrame],
    funding: dict[str, pl.DataFrame],
) -> tuple[dict[str, MarkBars], list[tuple[str, int, int, object]]]:
    """Marks aligned to the bars, and the funding and expiry events of the run."""
    for name, series in (("mark", marks), ("funding", funding)):
        for symbol in sorted(series):
            if symbol not in data:
                raise SetupError(
                    f"a {name} series for {symbol!r}, which has no bars in this run "
                    f"(bar symbols: {', '.join(data)})"
                )
            if not instruments[symbol].is_contract:
                raise SetupError(f"a {name} series for {symbol}, a spot instrument: contracts only")
    aligned = {s: align_marks(s, frame, marks.get(s)) for s, frame in data.items()}
    scheduled: list[Scheduled] = []
    for symbol, frame in data.items():
        if symbol in funding:
            scheduled.extend(funding_schedule(symbol, frame, aligned[symbol], funding[symbol]))
        scheduled.extend(expiry_schedule(instruments[symbol], frame, aligned[symbol]))
    scheduled.sort(key=lambda s: (s.ts, list(data).index(s.symbol)))
    return aligned, [(s.symbol, s.row, s.ts, s.event) for s in scheduled]


def _column(data: dict[str, pl.DataFrame], name: str) -> dict[str, np.ndarray]:
    return {symbol: frame[name].to_numpy() for symbol, frame in data.items()}


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
        venue_row = venue_wake(i)
        return strategy_row if strategy_row < venue_row else venue_row

    return next_row


def _reporting(next_row: Callable[[int], int], bar: Progress, rows: int) -> Callable[[int], int]:
    """`next_row`, telling the bar how far the sparse loop has got."""

    def reported(i: int) -> int:
        following = next_row(i)
        bar.advance_to(min(following, rows))
        return following

    return reported


def _known_on(
    known_at: np.ndarray, data: dict[str, pl.DataFrame], values: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Each instrument's latest value (one per bar) known at every timeline point (`known_at`: when
    the point's state is known): that of its last bar closed by then (before its first: its first)."""
    sampled: dict[str, np.ndarray] = {}
    for symbol, frame in data.items():
        ts = frame["ts"].to_numpy()
        column = values[symbol]
        closed_at = ts + bar_interval_ns(ts)
        if len(closed_at) == len(known_at) and np.array_equal(closed_at, known_at):
            sampled[symbol] = column
            continue
        at = np.searchsorted(closed_at, known_at, side="right") - 1
        sampled[symbol] = column[np.maximum(at, 0)]
    return sampled
