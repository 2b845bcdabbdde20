"""Annualization fits the data's calendar: 365 days on 24/7 crypto, the observed sessions per year on
weekday data (GOOG's daily bars, backtesting.py's test data), or what the run sets."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtester import Backtest
from backtester.data.bars import load_bars
from backtester.metrics import calendar as calendar_module
from backtester.metrics.calendar import session_days, session_ends, trading_calendar
from backtester.strategies import SmaCross

GOOG = "tests/data/backtestingpy_GOOG_1d.csv"
BTC = "golden/data/binance_BTC-USDT_1m.parquet"
DAY_NS = 86_400 * 10**9


def daily_returns(equity: pl.DataFrame, initial: float, weekdays: bool) -> np.ndarray:
    """The equity at each day's last bar, by polars on the frame (an independent computation)."""
    day = pl.col("ts").dt.truncate("1d")
    if weekdays:  # a weekend bar counts for the following Monday
        day = day + pl.duration(
            days=(8 - pl.col("ts").dt.weekday()) % 7 * (pl.col("ts").dt.weekday() >= 6)
        )
    closes = equity.group_by(day.alias("day"), maintain_order=True).agg(pl.col("equity").last())
    values = closes["equity"].to_numpy()
    return values / np.concatenate(([initial], values[:-1])) - 1.0


def test_goog_daily_bars_are_annualized_by_their_observed_sessions_per_year() -> None:
    bars = load_bars(GOOG).frame
    result = Backtest(bars, SmaCross, cash=10_000, fee_rate=0.002).run(fast=10, slow=20)
    stats = result.stats
    days = bars["ts"].to_numpy() // DAY_NS
    span_days = int(days[-1] - days[0]) + 1
    observed = bars.height * 365 / span_days  # one bar per session
    assert stats["calendar"] == "weekdays"
    assert stats["periods_per_year"] == pytest.approx(observed, rel=1e-12)
    assert 250 < stats["periods_per_year"] < 253
    returns = daily_returns(result.equity, 10_000, weekdays=True)
    annual = math.sqrt(observed)
    assert stats["volatility_ann_pct"] == pytest.approx(100 * returns.std(ddof=1) * annual)
    assert stats["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * annual)
    # The 365-day year of bars the statistics used to assume overstates it by sqrt(365 / 252).
    per_bar_365 = returns.std(ddof=1) * math.sqrt(365) * 100
    assert per_bar_365 / stats["volatility_ann_pct"] == pytest.approx(math.sqrt(365 / observed))


def test_crypto_minutes_are_annualized_over_365_days_from_daily_returns() -> None:
    result = Backtest(BTC, SmaCross, cash=100_000, fee_rate=0.001).run(fast=10, slow=30)
    stats = result.stats
    assert (stats["calendar"], stats["periods_per_year"], stats["ratio_returns"]) == (
        "24/7",
        365.0,
        "daily",
    )
    returns = daily_returns(result.equity, 100_000, weekdays=False)
    assert len(returns) == 22  # 2024-03-01 .. 2024-03-22
    assert stats["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(365))


def test_bar_returns_and_a_set_year_on_request() -> None:
    bt = Backtest(BTC, SmaCross, cash=100_000, fee_rate=0.001, ratio_returns="bar")
    assert bt.run().stats["periods_per_year"] == 525_600
    goog = Backtest(GOOG, SmaCross, ratio_returns="bar").run(fast=10, slow=20)
    assert goog.stats["periods_per_year"] == pytest.approx(
        Backtest(GOOG, SmaCross).run(fast=10, slow=20).stats["periods_per_year"]
    )
    fixed = Backtest(GOOG, SmaCross, periods_per_year=252).run(fast=10, slow=20)
    assert fixed.stats["periods_per_year"] == 252.0


def test_calendar_inference() -> None:
    hour = 3_600 * 10**9
    monday = 4 * DAY_NS  # 1970-01-05
    every_hour = np.arange(0, 60 * 24) * hour + monday  # 60 days, weekends included
    assert trading_calendar(every_hour).kind == "24/7"
    # Forex: Monday 00:00 to Friday 21:00, reopening Sunday 21:00 (a few weekend bars).
    weeks = [monday + w * 7 * DAY_NS + np.arange(-3, 5 * 24 - 3) * hour for w in range(8)]
    forex = np.concatenate(weeks)
    calendar = trading_calendar(forex)
    assert calendar.kind == "weekdays"
    assert calendar.sessions == 40  # the Sunday evening bars count for Monday
    sunday_evening = forex[:1]
    assert session_days(sunday_evening, "weekdays")[0] == monday // DAY_NS
    # Under a week of data cannot show its weekends: it counts as 24/7.
    assert trading_calendar(every_hour[:48]).kind == "24/7"


# --- computed over days, equal to the same rules applied to every bar ---------------------------


def reference_calendar(ts_ns: np.ndarray) -> tuple[str, float, int]:
    """The rules of `trading_calendar` on one day number per bar."""
    days = ts_ns // DAY_NS
    span_days = int(days[-1] - days[0]) + 1
    weekday = (days + 3) % 7
    weekend_share = float(np.count_nonzero(weekday >= 5)) / len(days)
    distinct = len(np.unique(days))
    if span_days < calendar_module.MIN_SPAN_DAYS or weekend_share > calendar_module.WEEKEND_SHARE:
        return "24/7", 365.0, distinct
    sessions = len(np.unique(np.where(weekday >= 5, days + (7 - weekday), days)))
    if span_days < calendar_module.MIN_OBSERVED_DAYS:
        return "weekdays", 365 * 5 / 7, sessions
    return "weekdays", sessions * 365 / span_days, sessions


def reference_session_ends(ts_ns: np.ndarray, kind: str) -> np.ndarray:
    sessions = session_days(ts_ns, kind)  # type: ignore[arg-type]
    return np.append(np.flatnonzero(sessions[1:] != sessions[:-1]), len(sessions) - 1)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(1, 3 * DAY_NS), min_size=1, max_size=300),
    st.integers(-400 * DAY_NS, 20_000 * DAY_NS),
    st.booleans(),
)
def test_calendar_over_days_equals_the_rules_over_bars(
    steps: list[int], start: int, skip_weekends: bool
) -> None:
    ts = start + np.cumsum(np.array(steps, dtype=np.int64))
    if skip_weekends:
        kept = ts[((ts // DAY_NS + 3) % 7) < 5]
        ts = kept if len(kept) else ts
    assert tuple(trading_calendar(ts)) == reference_calendar(ts)
    for kind in ("24/7", "weekdays"):
        assert np.array_equal(session_ends(ts, kind), reference_session_ends(ts, kind))
