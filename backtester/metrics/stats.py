"""Run statistics from the equity curve and the trades.

Annualization fits the data's calendar (`metrics.calendar`): 365 days a year on 24/7 data, the
sessions observed per year on weekday data, or `periods_per_year` when set. Sharpe, Sortino and
volatility come from daily returns by default (the equity at each trading day's last bar, the first
day measured from the initial equity), annualized by the trading days per year, as peers quote them;
`returns="bar"` takes bar-to-bar returns and the bars per year instead. The stats name the
convention used (`calendar`, `periods_per_year`, `ratio_returns`). CAGR counts calendar time.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import polars as pl

from backtester.compiled.drawdown import drawdown_profile, majority_step
from backtester.metrics.calendar import (
    Calendar,
    CalendarKind,
    Days,
    days_of,
    session_ends,
    trading_calendar,
)

RatioReturns = Literal["daily", "bar"]

NS_PER_DAY = 86_400 * 10**9
NS_PER_YEAR = 365 * NS_PER_DAY


class Stats(dict[str, Any]):
    """A dict of statistics that reads well in a terminal and a notebook."""

    def __repr__(self) -> str:
        width = max(map(len, self), default=0)
        return "\n".join(f"{key:<{width}}  {_fmt(value)}" for key, value in self.items())

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th>{k}</th><td>{_fmt(v)}</td></tr>" for k, v in self.items())
        return f"<table>{rows}</table>"

    def to_frame(self) -> pl.DataFrame:
        return pl.DataFrame({"stat": list(self), "value": [_fmt(v) for v in self.values()]})


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if math.isfinite(value) else str(value)
    return str(value)


def bar_interval_ns(timestamps: np.ndarray) -> int:
    """The bar interval, as the most common step between timestamps (gaps do not distort it)."""
    if len(timestamps) < 2:
        return NS_PER_DAY
    # A step taken by more than half the bars is the most common one, without sorting them all.
    majority = majority_step(np.ascontiguousarray(timestamps, dtype=np.int64))
    if majority >= 0:
        return int(majority)
    unique, counts = np.unique(np.diff(timestamps), return_counts=True)
    return int(unique[np.argmax(counts)])


def compute_stats(
    equity: pl.DataFrame | None,
    trades: pl.DataFrame,
    *,
    initial_cash: float,
    fees_paid: float,
    first_close: float,
    last_close: float,
    exposure: np.ndarray | int,
    periods_per_year: float | None = None,
    returns: RatioReturns = "daily",
    drawdown: tuple[float, int] | None = None,
    interval: int | None = None,
    timeline: np.ndarray | None = None,
    values: np.ndarray | None = None,
    peak: float | None = None,
) -> Stats:
    """`equity` has columns ts (UTC datetime) and equity; `trades` is a trades frame or its summary
    (`metrics.trades.SUMMARY_SCHEMA`: the columns taken here); `exposure` is True where a position
    is held (or the number of such bars). `periods_per_year`: of the returns the ratios use (trading days
    with daily returns, bars with bar returns); None infers it from the calendar. `drawdown`:
    `drawdown_profile` of the equity when a pass over it already took it (`mark_to_market`);
    `interval`: `bar_interval_ns` of its timestamps when the caller took it already; `timeline`
    and `values`: the same timestamps as int64 nanoseconds and the equity, when the caller has
    them (then `equity` may be None: the frame is not needed); `peak`: the running peak of the
    equity after its last value when a pass over it took it (`accounting.marking.mark_bar`'s,
    which carries a NaN as `np.maximum.reduce` does)."""
    if timeline is None or values is None:
        assert equity is not None, "the equity frame, or its timestamps and values"
        timeline = equity["ts"].dt.epoch("ns").to_numpy()
        values = equity["equity"].to_numpy()
    ts = timeline
    if interval is None:
        interval = bar_interval_ns(ts)
    # The days the series spans, searched for once: the calendar and the session ends take them.
    spanned = days_of(ts) if len(ts) else None
    calendar = trading_calendar(ts, spanned)
    if returns == "daily":
        period_returns = _daily_returns(ts, values, initial_cash, calendar.kind, spanned)
        inferred = calendar.sessions_per_year
    else:
        period_returns = _bar_returns(values)
        inferred = _bars_per_year(len(values), interval, calendar)
    per_year = inferred if periods_per_year is None else float(periods_per_year)
    span = int(ts[-1] - ts[0]) + interval
    final = float(values[-1])
    total_return = final / initial_cash - 1.0
    years = span / NS_PER_YEAR
    cagr = _cagr(final / initial_cash, years)

    mean = float(period_returns.mean()) if len(period_returns) else 0.0
    std = float(period_returns.std(ddof=1)) if len(period_returns) > 1 else 0.0
    losses_only = np.minimum(period_returns, 0.0)
    np.square(losses_only, out=losses_only)
    downside = float(np.sqrt(np.mean(losses_only))) if len(period_returns) else 0.0
    annual = math.sqrt(per_year)
    sharpe = mean / std * annual if std > 0 else math.nan
    sortino = mean / downside * annual if downside > 0 else math.nan

    deepest, dd_duration = drawdown_profile(ts, values) if drawdown is None else drawdown
    max_drawdown = float(deepest)
    calmar = cagr / -max_drawdown if max_drawdown < 0 else math.nan

    # The closed trades' columns, filtered as Series: a query would cost a plan and a collect.
    is_closed = ~trades["is_open"]
    returns_pct = trades["return_pct"].filter(is_closed)
    pnl = trades["pnl"].filter(is_closed).to_numpy()
    closed_count = len(pnl)
    wins = pnl[pnl > 0]
    losses = pnl[pnl < 0]
    gross_loss = -float(losses.sum())
    durations = whole_seconds(trades["duration"].filter(is_closed)) if closed_count else np.zeros(0)

    # As the equity frame's first and last times read (UTC datetimes).
    start, end = pl.Series([ts[0], ts[-1]], dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))
    return Stats(
        start=str(start),
        end=str(end),
        bars=len(values),
        bar_interval_s=interval / 1e9,
        calendar=calendar.kind,
        periods_per_year=per_year,
        ratio_returns=returns,
        initial_equity=initial_cash,
        final_equity=final,
        peak_equity=_peak(values, peak),
        total_return_pct=100.0 * total_return,
        buy_and_hold_return_pct=100.0 * (last_close / first_close - 1.0),
        cagr_pct=100.0 * cagr,
        volatility_ann_pct=100.0 * std * annual,
        sharpe=sharpe,
        sortino=sortino,
        calmar=calmar,
        max_drawdown_pct=100.0 * max_drawdown,
        max_drawdown_duration_days=dd_duration / NS_PER_DAY,
        exposure_time_pct=_exposure_pct(exposure, len(values)),
        trades=closed_count,
        open_trades=int(trades.height - closed_count),
        win_rate_pct=100.0 * len(wins) / len(pnl) if len(pnl) else math.nan,
        best_trade_pct=float(returns_pct.max()) if closed_count else math.nan,  # type: ignore[arg-type]
        worst_trade_pct=float(returns_pct.min()) if closed_count else math.nan,  # type: ignore[arg-type]
        avg_trade_pct=float(returns_pct.mean()) if closed_count else math.nan,  # type: ignore[arg-type]
        profit_factor=float(wins.sum()) / gross_loss if gross_loss > 0 else math.nan,
        expectancy=float(pnl.mean()) if len(pnl) else math.nan,
        avg_trade_duration_hours=float(durations.mean()) / 3600 if len(durations) else math.nan,
        fees_paid=fees_paid,
    )


_PER_SECOND = {"ns": 10**9, "us": 10**6, "ms": 10**3}


def whole_seconds(durations: pl.Series) -> np.ndarray:
    """`durations.dt.total_seconds()` (whole seconds, toward zero) as numpy, from the integers
    (polars makes a query of the method: a plan and a collect)."""
    unit = getattr(durations.dtype, "time_unit", None)
    if durations.null_count() or unit not in _PER_SECOND:
        return durations.dt.total_seconds().to_numpy()
    ticks = durations.cast(pl.Int64).to_numpy()
    seconds: np.ndarray = np.abs(ticks) // _PER_SECOND[unit] * np.sign(ticks)
    return seconds


def _peak(values: np.ndarray, peak: float | None) -> float:
    """The highest equity, as `np.maximum.reduce` gives it. A pass's running peak is the same
    number but for the sign of a zero (of equal values, it keeps the first): a zero is taken again."""
    if peak is None or peak == 0.0:
        return float(np.maximum.reduce(values))
    return peak


def _exposure_pct(exposure: np.ndarray | int, bars: int) -> float:
    """The share of bars with a position, in percent. A count divides by the bars as the mean of
    the flags does (two exact integers, one rounding)."""
    if isinstance(exposure, np.ndarray):
        return 100.0 * float(exposure.mean()) if len(exposure) else 0.0
    return 100.0 * (exposure / bars) if bars else 0.0


def _bar_returns(values: np.ndarray) -> np.ndarray:
    returns = np.diff(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(returns, values[:-1], out=returns)  # in place: a year of bars is 4 MB a column
    return returns


def _daily_returns(
    ts: np.ndarray, values: np.ndarray, initial: float, kind: CalendarKind, spanned: Days | None
) -> np.ndarray:
    closes = values[session_ends(ts, kind, spanned)]
    previous = np.concatenate(([initial], closes[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        result: np.ndarray = closes / previous - 1.0
    return result


def _bars_per_year(bars: int, interval: int, calendar: Calendar) -> float:
    """24/7: the bars of a year at the bar interval. Weekdays: the sessions per year times the bars
    the data has per session."""
    if calendar.kind == "24/7" or not calendar.sessions:
        return NS_PER_YEAR / interval
    return calendar.sessions_per_year * bars / calendar.sessions


def _cagr(growth: float, years: float) -> float:
    """Annualized growth; a gain over a few minutes annualizes past the float range: +inf, not a crash."""
    if growth <= 0:
        return -1.0
    try:
        return float(growth ** (1.0 / years) - 1.0)
    except OverflowError:
        return math.inf
