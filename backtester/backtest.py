"""The notebook API: `Backtest(data, Strategy, cash=..., fee_rate=...).run(**params)`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import polars as pl

from backtester.config import FillConfig, IntrabarPath, RiskConfig, StatsConfig
from backtester.data.bars import BarData, DataError, load_bars
from backtester.data.market_series import load_funding, load_marks
from backtester.domain.instrument import Instrument, default_instrument
from backtester.domain.models import FeeModel, SlippageModel
from backtester.engine import Engine, EngineSetup, Mode
from backtester.engine.setup import AccountKind
from backtester.engine.timeframes import given_problem
from backtester.execution.fees import FixedRateFee
from backtester.execution.slippage import NoSlippage
from backtester.lookahead import LookaheadReport, check_lookahead
from backtester.manifest import utc_now
from backtester.progress import bar_wanted
from backtester.results import RunResult
from backtester.runs.notebook import Origin
from backtester.strategy.base import Strategy

if TYPE_CHECKING:
    from backtester.optimize import Optimization
    from backtester.walk_forward import WalkForwardResult

# A pandas DataFrame is accepted too (typed Any: pandas is an optional dependency).
DataSource = pl.DataFrame | str | Path | Any


class Backtest:
    """One dataset (or several, keyed by symbol), one strategy class, the simulation knobs.

    data        a polars DataFrame, or a path to a .parquet or .csv file, with columns
                timestamp_ms (or timestamp), open, high, low, close, volume; a pandas DataFrame
                with a DatetimeIndex and Open/High/Low/Close/Volume columns, or a CSV written from
                one (backtesting.py's format); or a dict symbol -> any of these
    strategy    a `Strategy` subclass
    cash        starting cash in the quote currency
    fee_rate    a fixed fee rate on every fill's notional (0.001 = 0.1%); or pass `fees=` a model
    slippage    a slippage model (default: none)
    instrument  an `Instrument` with tick/lot sizes and notional limits (default: no rounding)
    trade_on_close  fill market orders at the close of the bar that placed them
    intrabar    which of two orders that could fill in one bar fills first: "pessimistic" (the
                default, as backtesting.py and backtrader: the extreme adverse to the position first,
                so a stop-loss beats a take-profit), "optimistic" or "ohlc" (by the bar's direction)
    max_position_quantity, max_position_notional  limits on the position; `on_limit` "deny" (an
                order past them is denied) or "cap" (cut down to the limit)
    repair      drop identical duplicate bars, keep the last of conflicting ones and sort
                out-of-order bars (reported in `result.repairs`)
    seed        seeds every random draw of the run (stochastic models); same seed, same result
    mode        "auto" (default), "dense", "signal" or "compiled": signal mode visits only the bars a
                strategy declares active and those where a resting order can fill; the compiled
                path runs a `SignalStrategy`'s plan in one compiled loop; results are identical
    account     "cash" (spot) or "margin" (contracts: leverage, shorts, funding, liquidation);
                default: margin when the instrument is a contract
    funding     funding rates of a perpetual: a frame or file with a timestamp and `funding_rate`
                (or `rate`); or a dict symbol -> such
    mark        mark-price candles of a contract (frame or file, OHLC; volume optional), which value
                positions, margin and liquidation; without, the last price marks; or a dict
    periods_per_year  annualizes Sharpe, Sortino and volatility (periods of `ratio_returns`);
                default: from the data's calendar, 365 days on 24/7 data, the sessions per year
                observed on weekday data (stocks: about 252)
    ratio_returns   "daily" (default: returns of the equity at each trading day's last bar, as
                peers quote Sharpe) or "bar" (bar-to-bar returns, annualized by bars per year)
    higher_timeframes  series for the timeframes the strategy declares (`Strategy.timeframes`),
                by timeframe ("1h": for the first instrument) or "SYMBOL@1h"; the others are
                resampled from the data
    """

    def __init__(
        self,
        data: DataSource | dict[str, DataSource],
        strategy: type[Strategy[Any]],
        *,
        cash: float = 10_000.0,
        fee_rate: float = 0.0,
        fees: FeeModel | None = None,
        slippage: SlippageModel | None = None,
        instrument: Instrument | dict[str, Instrument] | None = None,
        symbol: str = "BTC/USDT",
        trade_on_close: bool = False,
        intrabar: IntrabarPath | str = IntrabarPath.PESSIMISTIC,
        max_position_quantity: float | None = None,
        max_position_notional: float | None = None,
        on_limit: Literal["deny", "cap"] = "deny",
        repair: bool = False,
        seed: int = 0,
        mode: Mode = "auto",
        account: AccountKind | None = None,
        funding: DataSource | dict[str, DataSource] | None = None,
        mark: DataSource | dict[str, DataSource] | None = None,
        periods_per_year: float | None = None,
        ratio_returns: Literal["daily", "bar"] = "daily",
        higher_timeframes: Mapping[str, DataSource] | None = None,
    ) -> None:
        if not (math.isfinite(cash) and cash > 0):
            raise ValueError(f"cash must be a finite amount > 0, got {cash}")
        sources = data if isinstance(data, dict) else {_symbol_of(instrument, symbol): data}
        loaded: dict[str, BarData] = {
            name: load_bars(source, repair=repair) for name, source in sources.items()
        }
        self.data = {name: bars.frame for name, bars in loaded.items()}
        self.higher_sources = dict(higher_timeframes or {})
        given = {
            name: _given_series(name, source, self.data, strategy, repair)
            for name, source in self.higher_sources.items()
        }
        self.higher = {name: bars.frame for name, bars in given.items()}
        self.sources = dict(sources)
        self.repair = repair
        self.given_instruments = _given(instrument)
        self.repairs = [
            bars.repair for bars in [*loaded.values(), *given.values()] if bars.repair is not None
        ]
        self.instruments = _instruments_for(list(self.data), instrument)
        self.strategy = strategy
        self.fees: FeeModel = fees if fees is not None else FixedRateFee(rate=fee_rate)
        self.slippage: SlippageModel = slippage if slippage is not None else NoSlippage()
        primary = next(iter(sources))
        self.funding_sources = _by_symbol(funding, primary)
        self.mark_sources = _by_symbol(mark, primary)
        self.funding = {
            name: load_funding(source, name=f"funding of {name}")
            for name, source in self.funding_sources.items()
        }
        self.marks = {
            name: load_marks(source, name=f"mark of {name}").frame
            for name, source in self.mark_sources.items()
        }
        self.setup = EngineSetup(
            initial_cash=float(cash),
            account=account,
            fill=FillConfig(trade_on_close=trade_on_close, intrabar=IntrabarPath(intrabar)),
            risk=RiskConfig(
                max_position_quantity=max_position_quantity,
                max_position_notional=max_position_notional,
                on_limit=on_limit,
            ),
            seed=seed,
            mode=mode,
            stats=StatsConfig(periods_per_year=periods_per_year, returns=ratio_returns),
        )

    def run(
        self, *, save: bool | str | Path = False, progress: bool | None = None, **params: Any
    ) -> RunResult:
        """Run with the strategy's parameters (validated against its `Params`). `save=True` also
        writes the run directory under `runs/` (a path: under that directory) as `result.save()`
        does; `result.run_dir` is where it went. `progress`: a progress bar over the bars (default:
        on a terminal only, not in a notebook or CI)."""
        started_at = utc_now()
        engine = self.engine(**params)
        result = engine.run(progress=bar_wanted(progress))
        result.bars = self.data
        result.origin = self.origin(
            self.strategy.make_params(params), dict(params), started_at, utc_now()
        )
        if save is not False:
            result.save("runs" if save is True else save)
        return result

    def optimize(self, **kwargs: Any) -> Optimization:
        """Run the strategy over a parameter space and find its best point, as a sweep does.

        Parameters as keywords: a `range` or a list (the values; a grid's axes), a `(low, high)`
        pair (every value between, for random and Bayesian methods), or a single value (fixed).
        `maximize="sharpe"` (default) or `minimize="max_drawdown_pct"`, or lists of both for
        several objectives; `method`: "grid" (default), "random", "tpe", "cmaes" or "nsga2",
        with `n_trials` (and `batch`, the trials asked at once); `constraint`: a function of the
        point (`lambda p: p.fast < p.slow`) or an expression ("fast < slow"); `workers`: local
        processes (default one per core); `nats`: a NATS server URL to run on its workers
        instead; `seed`; `out`: where the sweep directory goes (default "runs"); `materialize`:
        how many of the best runs get full run directories there (default 1; `.runs`).
        Returns an `Optimization`: `.table` (a polars frame), `.best`, `.selection`, `.plot()`.
        The same points give the same table and digest as `python -m backtester sweep`."""
        from backtester.optimize import optimize  # noqa: PLC0415  (sweep machinery on demand)

        return optimize(self, **kwargs)

    def walk_forward(
        self, *, train: str, test: str, step: str | None = None, **kwargs: Any
    ) -> WalkForwardResult:
        """Walk-forward validation: per fold, optimize on `train` (a duration: "60d", "12h"),
        run the best point on the `test` after it, move on by `step` (default `test`);
        `anchored=True` keeps every training window's start at the data's first bar. The other
        keywords are `optimize`'s (parameters, `maximize`, `method`, `workers`, ...). Returns a
        `WalkForwardResult`: `.folds`, the stitched out-of-sample `.equity` and its `.stats`,
        `.runs` (the out-of-sample run directories) and `.report()` (the HTML page). The same
        folds and results as `python -m backtester sweep` with `[walk_forward]` in the config.
        Raises `backtester.walk_forward.FoldFailed` (naming the fold and its training window) when
        a fold's in-sample sweep has no point to run out of sample."""
        from backtester.walk_forward import walk_forward  # noqa: PLC0415  (sweep machinery on demand)

        return walk_forward(self, train=train, test=test, step=step, **kwargs)

    def origin(
        self, params: msgspec.Struct, given: dict[str, Any], started_at: str, finished_at: str
    ) -> Origin:
        """What a run of this backtest with `params` (`given`: as named in the call) is made of,
        which `RunResult.save` describes as a run config."""
        return Origin(
            sources=self.sources,
            bars=self.data,
            series={
                "mark": {s: (given, self.marks[s]) for s, given in self.mark_sources.items()},
                "funding": {
                    s: (given, self.funding[s]) for s, given in self.funding_sources.items()
                },
            },
            repair=self.repair,
            instruments=list(self.given_instruments.values()),
            strategy=self.strategy,
            params=params,
            given_params=given,
            fees=self.fees,
            slippage=self.slippage,
            setup=self.setup,
            started_at=started_at,
            finished_at=finished_at,
            higher={name: (self.higher_sources[name], f) for name, f in self.higher.items()},
        )

    def engine(self, **params: Any) -> Engine:
        """The engine `run(**params)` would run, built and not yet run: its mode and, on the
        event-driven path, its modules can be inspected before and after `engine.run()`."""
        return Engine(
            self.data,
            self.instruments,
            self.strategy,
            self.strategy.make_params(params),
            self.fees,
            self.slippage,
            self.setup,
            self.repairs,
            marks=self.marks,
            funding=self.funding,
            timeframes=self.higher,
        )

    def check_lookahead(self, *, cuts: int = 20, seed: int = 0, **params: Any) -> LookaheadReport:
        """The look-ahead check of `run(**params)`: re-run on the data cut after `cuts` seeded bars
        and report every signal, order, fill, closed trade or registered indicator at or before a
        cut that differs from the full run (`report.ok` when there is none), and how much each
        registered indicator depends on the history before it (`report.drift`)."""
        typed = self.strategy.make_params(params)

        def factory(data: dict[str, pl.DataFrame]) -> Engine:
            return Engine(
                data,
                self.instruments,
                self.strategy,
                typed,
                self.fees,
                self.slippage,
                self.setup,
                self.repairs,
                # The engine reads marks, funding and given higher-timeframe bars only over the
                # bars it is given.
                marks=self.marks,
                funding=self.funding,
                timeframes=self.higher,
            )

        return check_lookahead(factory, self.data, cuts=cuts, seed=seed)


def _given_series(
    name: str,
    source: DataSource,
    data: dict[str, pl.DataFrame],
    strategy: type[Strategy[Any]],
    repair: bool,
) -> BarData:
    """A given higher-timeframe series, loaded and checked against the bars it stands next to."""
    label = str(source) if isinstance(source, str | Path) else f"higher_timeframes[{name!r}]"
    symbol, _, timeframe = name.rpartition("@")
    symbol = symbol or next(iter(data))
    if timeframe not in strategy.timeframes:
        declared = ", ".join(strategy.timeframes) or "none"
        raise DataError(
            f"higher_timeframes[{name!r}]: {strategy.__name__} declares no timeframe "
            f"{timeframe!r} (Strategy.timeframes: {declared})"
        )
    if symbol not in data:
        raise DataError(
            f"higher_timeframes[{name!r}]: {symbol!r} is no instrument of the backtest "
            f"({', '.join(data)})"
        )
    bars = load_bars(source, repair=repair, name=label)
    problem = given_problem(bars.frame, data[symbol], timeframe, symbol)
    if problem is not None:
        raise DataError(f"{label}: {problem}")
    return bars


def _by_symbol(
    given: DataSource | dict[str, DataSource] | None, primary: str
) -> dict[str, DataSource]:
    if given is None:
        return {}
    return given if isinstance(given, dict) else {primary: given}


def _symbol_of(instrument: Instrument | dict[str, Instrument] | None, default: str) -> str:
    return instrument.symbol if isinstance(instrument, Instrument) else default


def _given(instrument: Instrument | dict[str, Instrument] | None) -> dict[str, Instrument]:
    if isinstance(instrument, Instrument):
        return {instrument.symbol: instrument}
    return dict(instrument or {})


def _instruments_for(
    symbols: list[str], given: Instrument | dict[str, Instrument] | None
) -> dict[str, Instrument]:
    if isinstance(given, Instrument):
        given = {given.symbol: given}
    given = given or {}
    return {s: given.get(s) or default_instrument(s) for s in symbols}
