"""A run's results: polars frames, statistics and a digest that proves two runs identical."""

from __future__ import annotations

import functools
import html
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, overload

import msgspec
import numpy as np
import polars as pl
from polars._typing import PolarsDataType

from backtester.compiled.drawdown import mark_to_market
from backtester.config import StatsConfig
from backtester.core.digest import DIGEST_ALGORITHM, STRING_SEPARATOR, Digest
from backtester.core.memory import columns
from backtester.data.bars import RepairReport
from backtester.metrics.stats import Stats, compute_stats
from backtester.metrics.trades import (
    FUNDING_SCHEMA,
    FillColumns,
    fill_columns,
    round_trip_record,
)

if TYPE_CHECKING:
    from backtester.runs.notebook import Origin

UTC_NS = pl.Datetime("ns", "UTC")


class FrameBuiltWhenRead:
    """A result's frame given as a frame or as what builds it, called when the frame is first read
    (adr/0026): most runs of a sweep never read their fills or orders."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc
        self._slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}"

    @overload
    def __get__(self, result: None, owner: type) -> FrameBuiltWhenRead: ...
    @overload
    def __get__(self, result: object, owner: type) -> pl.DataFrame: ...
    def __get__(self, result: object | None, owner: type) -> pl.DataFrame | FrameBuiltWhenRead:
        if result is None:
            return self
        given: pl.DataFrame | Callable[[], pl.DataFrame] = getattr(result, self._slot)
        if isinstance(given, pl.DataFrame):
            return given
        frame = given()
        setattr(result, self._slot, frame)
        return frame

    def __set__(self, result: object, frame: pl.DataFrame | Callable[[], pl.DataFrame]) -> None:
        setattr(result, self._slot, frame)


class RunResult:
    """What `Backtest.run` returns. Frames are polars; `stats` is a dict with a readable repr."""

    def __init__(
        self,
        *,
        strategy: str,
        params: dict[str, Any],
        seed: int,
        trades: pl.DataFrame | Callable[[], pl.DataFrame],
        fills: pl.DataFrame | Callable[[], pl.DataFrame],
        orders: pl.DataFrame | Callable[[], pl.DataFrame],
        equity: pl.DataFrame | Callable[[], pl.DataFrame],
        stats: Stats,
        digest: str,
        repairs: list[RepairReport],
        bars: dict[str, pl.DataFrame] | None = None,
        funding: pl.DataFrame | None = None,
        account: str = "cash",
    ) -> None:
        self.strategy = strategy
        self.params = params
        self.seed = seed
        self.trades = trades
        self.fills = fills
        self.orders = orders
        self.equity = equity
        self.stats = stats
        self.digest = digest
        self.repairs = repairs
        # Funding payments (none on spot), and the kind of account the run booked into.
        self.funding = funding if funding is not None else pl.DataFrame(schema=FUNDING_SCHEMA)
        self.account = account
        # What valued each instrument's positions: "mark" (a mark-price series) or "last" (its
        # last traded price).
        self.marked_by: dict[str, str] = {}
        # The input bars by symbol, kept for the price chart of `plot()` (the frames the engine ran on,
        # not a copy); None when the result was built without them.
        self.bars = bars
        # Set by `Backtest.run`: what `save()` describes the run with; None when not from there.
        self.origin: Origin | None = None
        # The run directory, once saved.
        self.run_dir: Path | None = None

    trades = FrameBuiltWhenRead(
        "The round trips (`metrics.trades.TRADE_SCHEMA`), closed ones in the order they closed."
    )
    fills = FrameBuiltWhenRead("Every fill, in the order booked (`FILL_SCHEMA`).")
    orders = FrameBuiltWhenRead(
        "Every order, in the order submitted (`ORDER_SCHEMA`, timestamps as UTC datetimes)."
    )
    equity = FrameBuiltWhenRead(
        "The account at every bar: ts, cash, position_value, equity, drawdown_pct, funding and "
        "notional (`equity_frame`)."
    )

    def __repr__(self) -> str:
        s = self.stats
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        text = (
            f"<RunResult {self.strategy}({params}) seed={self.seed} bars={s['bars']} "
            f"trades={s['trades']} return={s['total_return_pct']:.2f}% "
            f"sharpe={s['sharpe']:.3f} max_dd={s['max_drawdown_pct']:.2f}% "
            f"digest={self.digest[:12]}>"
        )
        warning = self.denial_warning()
        return text if warning is None else f"{text}\nwarning: {warning}; see result.denials"

    def _repr_html_(self) -> str:
        head = self.__repr__().split("\n", 1)[0]
        warning = self.denial_warning()
        shown = (
            ""
            if warning is None
            else f"<p><strong>warning:</strong> {html.escape(warning)}; see result.denials</p>"
        )
        return f"<p><code>{html.escape(head[1:-1])}</code></p>{shown}{self.stats._repr_html_()}"

    def denial_warning(self) -> str | None:
        """One line when risk denied any order (a run that trades less than its strategy asked),
        else None."""
        return denial_warning(self.stats)

    @property
    def denials(self) -> pl.DataFrame:
        """Denied orders counted by rule (`code`), with the first reason given for each."""
        denied = self.orders.filter(pl.col("status") == "denied")
        return (
            denied.group_by("code", maintain_order=True)
            .agg(pl.len().alias("count"), pl.col("reason").first().alias("example"))
            .sort(["count", "code"], descending=[True, False])
        )

    def plot(
        self,
        bars: dict[str, pl.DataFrame] | None = None,
        *,
        filename: str | Path | None = None,
        show: bool | None = None,
    ) -> Any:
        """The report's interactive charts (price with fills, equity, drawdown, exposure, monthly
        returns, trade distributions) as one Bokeh layout, shown inline in a notebook. `bars` overrides
        the bars the run kept; `filename` also writes the self-contained HTML report there.
        Needs the `report` extra (`pip install backtester[report]`)."""
        from backtester.report.commands import require_report_extra

        require_report_extra("result.plot() needs")
        from backtester.report.notebook import plot_result

        return plot_result(
            self, self.bars if bars is None else bars, filename=filename, show_inline=show
        )

    def to_pandas(self) -> PandasFrames:
        """Bar returns, trades and equity as pandas objects indexed by UTC time, the shape pandas-based
        tools (quantstats, pyfolio, empyrical) take. Needs pandas (the `report` extra)."""
        from backtester.report.commands import require_report_extra

        require_report_extra("result.to_pandas() needs", "pandas")
        equity = self.equity.to_pandas().set_index("ts")
        returns = equity["equity"].pct_change().fillna(0.0).rename("returns")
        return PandasFrames(returns=returns, trades=self.trades.to_pandas(), equity=equity)

    def save(self, output_dir: str | Path = "runs") -> Path:
        """Write the run directory `<output_dir>/<run_id>/` the `run` command would write for this
        backtest (manifest, config, stats, frames), which `verify`, `compare` and `report` take;
        bars given as a DataFrame are stored under `<output_dir>/data/`. Returns the directory."""
        if self.origin is None:
            raise ValueError("only a result of Backtest.run can be saved")
        from backtester.runs.notebook import save_result

        self.run_dir = save_result(self, self.origin, output_dir)
        return self.run_dir


class PandasFrames(NamedTuple):
    returns: Any
    trades: Any
    equity: Any


FILL_SCHEMA: dict[str, PolarsDataType] = {
    "ts": UTC_NS,
    "order_id": pl.Int64,
    "instrument": pl.String,
    "side": pl.String,
    "price": pl.Float64,
    "quantity": pl.Float64,
    "fee": pl.Float64,
    "liquidity": pl.String,
    "leaves_quantity": pl.Float64,
    "tag": pl.String,
}


# Timestamps are built as int64 nanoseconds and cast to UTC_NS afterwards.
ORDER_SCHEMA: dict[str, PolarsDataType] = {
    "order_id": pl.Int64,
    "ts_submitted": pl.Int64,
    "instrument": pl.String,
    "side": pl.String,
    "type": pl.String,
    "time_in_force": pl.String,
    "quantity": pl.Float64,
    "fraction": pl.Float64,
    "limit_price": pl.Float64,
    "stop_price": pl.Float64,
    "tag": pl.String,
    "status": pl.String,
    "reason": pl.String,
    # The rule that denied it (risk's code, e.g. "max_position"); "" for an order not denied.
    "code": pl.String,
    "filled_quantity": pl.Float64,
    "avg_fill_price": pl.Float64,
    "ts_closed": pl.Int64,
}


def equity_frame(
    timeline: np.ndarray,
    cash: np.ndarray,
    position_value: np.ndarray,
    marked: tuple[np.ndarray, np.ndarray] | None = None,
    funding: np.ndarray | None = None,
    notional: np.ndarray | None = None,
) -> pl.DataFrame:
    """`marked`: the equity and drawdown columns when already computed (`mark_to_market`);
    `funding` paid so far and `notional` held at each point: columns when given. The columns are
    the given arrays themselves, not copies."""
    equity, drawdown = marked or (cash + position_value, None)
    extra = {"funding": funding, "notional": notional}
    return pl.DataFrame(
        [
            pl.Series("ts", timeline, dtype=pl.Int64).cast(UTC_NS),
            pl.Series("cash", cash),
            pl.Series("position_value", position_value),
            pl.Series("equity", equity),
            pl.Series("drawdown_pct", _drawdown_pct(equity) if drawdown is None else drawdown),
            *(pl.Series(name, values) for name, values in extra.items() if values is not None),
        ]
    )


def _drawdown_pct(equity: np.ndarray) -> np.ndarray:
    # The same expression `mark_to_market` evaluates per element (equity 0 at its peak: NaN).
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * (equity / np.maximum.accumulate(equity) - 1.0)


def result_digest(
    fills: pl.DataFrame, equity: pl.DataFrame, algorithm: str = DIGEST_ALGORITHM
) -> str:
    """The digest (XXH3-128 unless told) over the ordered fills and the equity curve, bit for bit."""
    return columns_digest(
        fill_columns(fills),
        equity["ts"].dt.epoch("ns").to_numpy(),
        equity["equity"].to_numpy(),
        algorithm,
    )


def columns_digest(
    fills: FillColumns, ts: np.ndarray, equity: np.ndarray, algorithm: str = DIGEST_ALGORITHM
) -> str:
    """`result_digest` from the fills' columns and the equity curve's times (int64 nanoseconds) and
    values."""
    digest = Digest(algorithm)
    digest.add_array("fill.ts", fills.ts)
    digest.add_array("fill.order_id", fills.order_id)
    digest.add_joined_utf8("fill.instrument", _joined_names(fills.symbols, fills.codes))
    digest.add_joined_utf8("fill.side", _joined_sides(fills.buy))
    digest.add_array("fill.price", fills.price)
    digest.add_array("fill.quantity", fills.quantity)
    digest.add_array("fill.fee", fills.fee)
    digest.add_array("equity.ts", ts)
    digest.add_array("equity.equity", equity)
    return digest.hexdigest()


def denial_summary(denied: pl.DataFrame) -> str:
    """`code=count` of denied orders, most frequent first ("" when none was denied)."""
    if denied.height == 0:
        return ""
    counts = denied.group_by("code").len().sort(["len", "code"], descending=[True, False])
    return ", ".join(f"{code or 'denied'}={n}" for code, n in counts.iter_rows())


_SEPARATOR = STRING_SEPARATOR.encode()


def _joined_names(symbols: list[str], codes: np.ndarray) -> bytes:
    """Each fill's instrument name, joined by the digest's separator, as UTF-8."""
    if len(symbols) == 1:
        # One name: the bytes repeated (a join would visit a string a fill).
        return ((symbols[0] + STRING_SEPARATOR).encode() * len(codes))[: -len(_SEPARATOR)]
    names = pl.Series(symbols, dtype=pl.String).gather(codes)
    return str(names.str.join(STRING_SEPARATOR).item()).encode()


# A fill's side as the fills frame writes it ("buy" or "sell"), with the separator after it: the
# rows of a table padded to one width, and which of each row's bytes are the text.
_SIDE_TEXT = [("sell" + STRING_SEPARATOR).encode(), ("buy" + STRING_SEPARATOR).encode()]
_SIDE_WIDTH = max(map(len, _SIDE_TEXT))
_SIDE_BYTES = np.array([list(t.ljust(_SIDE_WIDTH, b"\0")) for t in _SIDE_TEXT], dtype=np.uint8)
_SIDE_USED = np.array([[k < len(t) for k in range(_SIDE_WIDTH)] for t in _SIDE_TEXT])


def _joined_sides(buy: np.ndarray) -> bytes:
    """Each fill's side ("buy" or "sell"), joined by the digest's separator, as UTF-8: each fill's
    row of the table, less its padding (a list of the strings would be a Python object a fill)."""
    if len(buy) == 0:
        return b""
    if buy[0] and buy[::2].all() and not buy[1::2].any():
        # A buy then a sell, over and over (a long-only strategy's entries and exits): the pair's
        # text repeated, without a row a fill.
        pairs = _SIDE_TEXT[1] + _SIDE_TEXT[0]
        return (pairs * ((len(buy) + 1) // 2))[: _side_length(buy) - len(_SEPARATOR)]
    # `take`, not fancy indexing: numpy's fast path for whole rows.
    rows = buy.astype(np.intp)
    text: np.ndarray = _SIDE_BYTES.take(rows, axis=0).ravel()
    text = text[_SIDE_USED.take(rows, axis=0).ravel()]
    return text[: -len(_SEPARATOR)].tobytes()


def _side_length(buy: np.ndarray) -> int:
    """The bytes of the sides' texts, each with its separator."""
    buys = int(np.count_nonzero(buy))
    return buys * len(_SIDE_TEXT[1]) + (len(buy) - buys) * len(_SIDE_TEXT[0])


class Later:
    """What builds a frame, called once: later calls return the frame it built."""

    def __init__(self, build: Callable[[], pl.DataFrame]) -> None:
        self._build: Callable[[], pl.DataFrame] | None = build
        self._frame: pl.DataFrame | None = None

    def __call__(self) -> pl.DataFrame:
        if self._frame is None:
            assert self._build is not None
            self._frame, self._build = self._build(), None
        return self._frame


class DeferredFills(NamedTuple):
    """A fills frame built only when a result's `fills` is first read (`build`, a `Later`), and its
    columns, which the round trips and the digest take instead."""

    build: Later
    columns: FillColumns


class DeferredOrders(NamedTuple):
    """An orders frame built only when a result's `orders` is first read, with what the statistics
    take from it: how many orders there are, and whether any was denied (then the frame is built
    at once, for the denials' summary)."""

    build: Callable[[], pl.DataFrame]
    height: int
    any_denied: bool


class Marked(NamedTuple):
    """A one-instrument account already marked to market after each bar (`mark_to_market` over the
    books, as the compiled order path's loop does it): the equity, and what the statistics take
    from the same pass."""

    equity: np.ndarray
    deepest_drawdown: float
    longest_drawdown: int
    exposed_bars: int
    # The running peak after the last bar (`accounting.marking.mark_bar`'s).
    peak: float


def unit_values(
    marks: dict[str, np.ndarray], multipliers: dict[str, float] | None
) -> dict[str, np.ndarray]:
    """Each position's value per unit of quantity: the mark times the contract size (1 on spot)."""
    sizes = multipliers or {}
    return {s: m * sizes[s] if sizes.get(s, 1.0) != 1.0 else m for s, m in marks.items()}


class Books(NamedTuple):
    """The account sampled at every timeline point: cash, signed positions by instrument, and for
    margin accounts each position valued at its entry price and the funding paid so far."""

    cash: np.ndarray
    positions: dict[str, np.ndarray]
    cost_basis: dict[str, np.ndarray] | None = None
    funding: np.ndarray | None = None


def build_result(
    *,
    strategy: str,
    params: msgspec.Struct,
    seed: int,
    fills: pl.DataFrame | DeferredFills,
    orders: pl.DataFrame | DeferredOrders,
    timeline: np.ndarray,
    books: Books,
    marks: dict[str, np.ndarray],
    closes: dict[str, np.ndarray],
    initial_cash: float,
    fees_paid: float,
    intrabar_decisions: int,
    repairs: list[RepairReport],
    stats: StatsConfig,
    account: str = "cash",
    multipliers: dict[str, float] | None = None,
    funding: pl.DataFrame | None = None,
    liquidations: int = 0,
    ranges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
    fill_rows: np.ndarray | None = None,
    positions_given_away: bool = False,
    interval: int | None = None,
    marked: Marked | None = None,
) -> RunResult:
    """`marks`: each instrument's mark at every timeline point (on spot, its close), which values the
    positions; `closes`: its last price, for buy-and-hold and the marking of open trades; `account`:
    "cash" or "margin" (whose `cash` column is then the wallet balance and `position_value` the
    unrealized profit; equity is the same sum either way); `ranges`: each instrument's own bar
    times, highs and lows, for the trades' excursions; `fill_rows`: each fill's row there, when
    the caller knows it; `positions_given_away`: the caller no longer needs its position arrays,
    and the one instrument's becomes the position value column (a column-long array less);
    `interval`: `bar_interval_ns(timeline)` when the caller took it already; `marked`: the one
    instrument's account marked to market by the caller's loop (`unit_values` of these marks)."""
    cash, positions = books.cash, books.positions
    timeline_ns = np.ascontiguousarray(timeline, dtype=np.int64)
    sizes = multipliers or {}
    units = unit_values(marks, multipliers)
    margin_basis = books.cost_basis if account == "margin" else None
    equity: pl.DataFrame | Later
    peak: float | None = None  # the equity's running peak, where the caller's loop kept it
    if len(positions) == 1:
        ((symbol, held),) = positions.items()
        # The run takes the equity alone (the digest, the statistics), and the statistics' drawdown
        # profile and exposure from the same pass; the other columns are written when the equity
        # frame is first read, by the same pass over the same arrays. Without huge-page advice: a
        # fresh process's first run would wait for compaction (adr/0025).
        if marked is None:
            (values,) = columns(1, len(timeline))
            deepest, longest, exposed = mark_to_market(
                timeline_ns, cash, held, units[symbol], _NONE, values, _NONE, _NONE
            )
        else:
            values, deepest, longest, exposed, peak = marked
        profile: tuple[float, int] | None = (deepest, longest)
        exposure: np.ndarray | int = exposed
        equity = Later(
            functools.partial(
                _marked_equity_frame,
                timeline,
                timeline_ns,
                books,
                held,
                units[symbol],
                values,
                margin_basis,
                positions_given_away,
            )
        )
    else:
        position_value = np.zeros(len(timeline))
        notional = np.zeros(len(timeline))
        for symbol, held in positions.items():
            position_value += held * units[symbol]
            notional += np.abs(held) * units[symbol]
        profile = None
        holdings = iter(positions.values())
        exposure = next(holdings) != 0.0
        for held in holdings:
            exposure |= held != 0.0
        equity = _with_margin_basis(
            equity_frame(timeline, cash, position_value, None, _paid(books, timeline), notional),
            cash,
            position_value,
            margin_basis,
        )
        values = equity["equity"].to_numpy()
    last_mark = {s: (int(timeline[-1]), float(c[-1])) for s, c in marks.items()}
    funding_frame = funding if funding is not None else pl.DataFrame(schema=FUNDING_SCHEMA)
    # The statistics take a few columns of the trades; the whole frame is built when first read.
    if isinstance(fills, DeferredFills):
        fill_source: pl.DataFrame | Callable[[], pl.DataFrame] = fills.build
        taken = fills.columns
    else:
        fill_source, taken = fills, fill_columns(fills)
    trades = round_trip_record(taken, last_mark, sizes, funding_frame, ranges, fill_rows)
    primary = next(iter(closes.values()))
    computed = compute_stats(
        None,
        trades.summary,
        initial_cash=initial_cash,
        fees_paid=fees_paid,
        first_close=float(primary[0]),
        last_close=float(primary[-1]),
        exposure=exposure,
        periods_per_year=stats.periods_per_year,
        returns=stats.returns,
        drawdown=profile,
        interval=interval,
        timeline=timeline_ns,
        values=values,
        peak=peak,
    )
    # Closed trades by side, in one query.
    closed = ~trades.summary["is_open"].to_numpy()
    long = trades.summary["long"].to_numpy()
    longs, shorts = np.count_nonzero(closed & long), np.count_nonzero(closed & ~long)
    computed["long_trades"] = int(longs)
    computed["short_trades"] = int(shorts)
    computed["funding_paid"] = float(funding_frame["amount"].sum()) if funding_frame.height else 0.0
    computed["liquidations"] = liquidations
    orders_source: pl.DataFrame | Callable[[], pl.DataFrame]
    if isinstance(orders, DeferredOrders) and not orders.any_denied:
        # Nothing denied: the statistics need only the count, and the frame waits to be read.
        count, denied_count, summary = orders.height, 0, ""
        orders_source = orders.build
    else:
        frame = orders.build() if isinstance(orders, DeferredOrders) else orders
        denials = frame["status"] == "denied"
        # Most runs deny nothing: then no filtering pass over the orders.
        denied = frame.filter(denials) if denials.any() else frame.clear()
        count, denied_count, summary = frame.height, denied.height, denial_summary(denied)
        orders_source = frame
    computed["orders"] = count
    computed["fills"] = len(taken.ts)
    computed["orders_denied"] = denied_count
    computed["denial_reasons"] = summary
    # Bars where the assumed intrabar path decided which of several orders filled first.
    computed["intrabar_path_decisions"] = intrabar_decisions
    return RunResult(
        strategy=strategy,
        params=msgspec.structs.asdict(params),
        seed=seed,
        trades=trades.frame,
        fills=fill_source,
        orders=orders_source,
        equity=equity,
        stats=computed,
        digest=columns_digest(taken, timeline_ns, values),
        repairs=repairs,
        funding=funding_frame,
        account=account,
    )


_NONE = np.zeros(0)


def _marked_equity_frame(
    timeline: np.ndarray,
    timeline_ns: np.ndarray,
    books: Books,
    held: np.ndarray,
    unit_value: np.ndarray,
    values: np.ndarray,
    margin_basis: dict[str, np.ndarray] | None,
    positions_given_away: bool,
) -> pl.DataFrame:
    """The equity frame of one instrument's run, whose equity `values` the run took: every column
    from the pass that wrote them (the equity again, the same bits). A position array given away
    becomes the position value column."""
    n = len(timeline)
    if positions_given_away:
        drawdown, notional = columns(2, n)
        position_value = held
    else:
        position_value, drawdown, notional = columns(3, n)
    mark_to_market(
        timeline_ns, books.cash, held, unit_value, position_value, values, drawdown, notional
    )
    frame = equity_frame(
        timeline,
        books.cash,
        position_value,
        (values, drawdown),
        _paid(books, timeline),
        notional,
    )
    return _with_margin_basis(frame, books.cash, position_value, margin_basis)


def _paid(books: Books, timeline: np.ndarray) -> np.ndarray:
    return books.funding if books.funding is not None else np.zeros(len(timeline))


def _with_margin_basis(
    equity: pl.DataFrame,
    cash: np.ndarray,
    position_value: np.ndarray,
    cost_basis: dict[str, np.ndarray] | None,
) -> pl.DataFrame:
    """A margin account's equity frame: the wallet plus the positions at their entry prices as
    `cash`, the unrealized profit as `position_value` (the same equity)."""
    if cost_basis is None:
        return equity
    basis = np.zeros(len(cash))
    for values in cost_basis.values():
        basis += values
    return equity.with_columns(
        pl.Series("cash", cash + basis), pl.Series("position_value", position_value - basis)
    )


def denial_warning(stats: Mapping[str, Any]) -> str | None:
    """The warning of a run whose risk engine denied orders, from its statistics (a result's or a
    run directory's stats.json), else None."""
    denied = stats.get("orders_denied", 0)
    if not denied:
        return None
    return f"{denied} of {stats.get('orders', denied)} orders were denied ({stats.get('denial_reasons', '')})"
