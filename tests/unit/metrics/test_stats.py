"""Statistics on a hand-computed equity curve and trades; round trips from fills; SmaCross crossovers
decided exactly where the two averages tie."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pytest

from backtester import Backtest
from backtester.metrics.stats import _peak, compute_stats, whole_seconds
from backtester.metrics.trades import (
    FUNDING_SCHEMA,
    SUMMARY_SCHEMA,
    TRADE_SCHEMA,
    round_trip_record,
    round_trips,
)
from backtester.results import FILL_SCHEMA
from backtester.strategies import SmaCross
from backtester.strategy.library.indicators import crossovers, rolling_sum_exact, tick_scale
from backtester.strategy.library.sma_cross import sma_cross_signals
from tests.engine_support import bars_frame

MINUTE_NS = 60 * 10**9
T0_NS = 1_700_000_000 * 10**9
EQUITY = [100.0, 110.0, 99.0, 105.0, 120.0, 90.0, 95.0]
EXPOSURE = np.array([False, True, True, False, True, True, False])


def equity_frame(values: list[float]) -> pl.DataFrame:
    ts = [T0_NS + i * MINUTE_NS for i in range(len(values))]
    return pl.DataFrame({"ts": ts, "equity": values}).with_columns(
        pl.col("ts").cast(pl.Datetime("ns", "UTC"))
    )


def trades_frame(pnls: list[float], *, open_pnl: float | None = None) -> pl.DataFrame:
    rows = []
    for i, pnl in enumerate([*pnls, *([] if open_pnl is None else [open_pnl])]):
        rows.append(
            {
                "instrument": "X",
                "entry_time": T0_NS + i * MINUTE_NS,
                "exit_time": T0_NS + (i + 1) * MINUTE_NS,
                "entry_price": 100.0,
                "exit_price": 100.0 + pnl,
                "quantity": 1.0,
                "fees": 0.0,
                "pnl": pnl,
                "return_pct": pnl,  # cost 100: the return in percent equals the pnl
                "duration": 2 * (i + 1) * MINUTE_NS,
                "is_open": open_pnl is not None and i == len(pnls),
            }
        )
    return pl.DataFrame(rows, schema=TRADE_SCHEMA, orient="row")


@pytest.fixture
def stats() -> dict[str, object]:
    return compute_stats(
        equity_frame(EQUITY),
        trades_frame([30.0, -10.0, 20.0, -5.0], open_pnl=7.0),
        initial_cash=100.0,
        fees_paid=1.25,
        first_close=50.0,
        last_close=55.0,
        exposure=EXPOSURE,
    )


def test_returns_and_equity_levels_of_a_hand_computed_curve(stats: dict[str, object]) -> None:
    assert stats["bars"] == 7
    assert stats["bar_interval_s"] == 60.0
    assert stats["initial_equity"] == 100.0
    assert stats["final_equity"] == 95.0
    assert stats["peak_equity"] == 120.0
    assert stats["total_return_pct"] == pytest.approx(-5.0, abs=1e-12)
    assert stats["buy_and_hold_return_pct"] == pytest.approx(10.0, abs=1e-12)
    assert stats["fees_paid"] == 1.25


def test_max_drawdown_and_its_longest_duration(stats: dict[str, object]) -> None:
    # Peak 120 at bar 4, trough 90 at bar 5: -25%. Longest underwater: from the 110 peak at bar 1 to
    # recovery at bar 4 (3 minutes); the final one, from bar 4 to the end, lasts 2 minutes.
    assert stats["max_drawdown_pct"] == pytest.approx(-25.0, abs=1e-12)
    assert stats["max_drawdown_duration_days"] == pytest.approx(3 / 1440, abs=1e-15)


def test_trade_statistics_count_closed_trades_only(stats: dict[str, object]) -> None:
    assert stats["trades"] == 4
    assert stats["open_trades"] == 1
    assert stats["win_rate_pct"] == 50.0
    assert stats["profit_factor"] == pytest.approx(50.0 / 15.0, abs=1e-12)
    assert stats["expectancy"] == 8.75
    assert stats["best_trade_pct"] == 30.0
    assert stats["worst_trade_pct"] == -10.0
    assert stats["avg_trade_pct"] == 8.75
    # durations 2, 4, 6, 8 minutes
    assert stats["avg_trade_duration_hours"] == pytest.approx(5 / 60, abs=1e-12)


def test_exposure_is_the_share_of_bars_with_a_position(stats: dict[str, object]) -> None:
    assert stats["exposure_time_pct"] == pytest.approx(100 * 4 / 7, abs=1e-12)


def test_on_request_sharpe_and_volatility_annualize_bar_returns_over_365_days() -> None:
    stats = compute_stats(
        equity_frame(EQUITY),
        trades_frame([]),
        initial_cash=100.0,
        fees_paid=0.0,
        first_close=50.0,
        last_close=55.0,
        exposure=EXPOSURE,
        returns="bar",
    )
    values = np.array(EQUITY)
    returns = np.diff(values) / values[:-1]
    annual = math.sqrt(365 * 24 * 60)
    assert (stats["ratio_returns"], stats["periods_per_year"]) == ("bar", 365 * 24 * 60)
    assert stats["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * annual)
    assert stats["volatility_ann_pct"] == pytest.approx(100 * returns.std(ddof=1) * annual)


def test_a_run_within_one_day_has_one_daily_return_and_no_sharpe(
    stats: dict[str, object],
) -> None:
    assert (stats["calendar"], stats["periods_per_year"], stats["ratio_returns"]) == (
        "24/7",
        365.0,
        "daily",
    )
    assert math.isnan(stats["sharpe"])  # type: ignore[arg-type]
    # One return, -5%: its downside deviation is 5%, annualized over 365 days.
    assert stats["sortino"] == pytest.approx(-0.05 / 0.05 * math.sqrt(365))


def test_no_trades_gives_nan_trade_statistics_and_zero_drawdown() -> None:
    stats = compute_stats(
        equity_frame([100.0, 100.0, 100.0]),
        pl.DataFrame(schema=TRADE_SCHEMA),
        initial_cash=100.0,
        fees_paid=0.0,
        first_close=1.0,
        last_close=1.0,
        exposure=np.zeros(3, dtype=bool),
    )
    assert stats["trades"] == 0
    assert math.isnan(stats["win_rate_pct"])
    assert math.isnan(stats["profit_factor"])
    assert math.isnan(stats["sharpe"])
    assert stats["max_drawdown_pct"] == 0.0
    assert stats["max_drawdown_duration_days"] == 0.0


def test_short_profitable_run_reports_infinite_cagr_instead_of_crashing() -> None:
    # A 1% gain over three minutes annualizes beyond the float range.
    stats = compute_stats(
        equity_frame([100.0, 100.5, 101.0]),
        pl.DataFrame(schema=TRADE_SCHEMA),
        initial_cash=100.0,
        fees_paid=0.0,
        first_close=1.0,
        last_close=1.0,
        exposure=np.zeros(3, dtype=bool),
    )
    assert stats["cagr_pct"] == math.inf
    assert stats["total_return_pct"] == pytest.approx(1.0)


def test_round_trips_group_partial_fills_and_mark_open_trades_at_the_last_close() -> None:
    fills = pl.DataFrame(
        {
            "ts": [T0_NS + i * MINUTE_NS for i in range(5)],
            "order_id": [1, 2, 3, 4, 5],
            "instrument": ["X"] * 5,
            "side": ["buy", "buy", "sell", "sell", "buy"],
            "price": [100.0, 110.0, 120.0, 130.0, 90.0],
            "quantity": [1.0, 1.0, 1.5, 0.5, 2.0],
            "fee": [1.0, 1.0, 1.0, 1.0, 0.5],
            "liquidity": ["taker"] * 5,
            "leaves_quantity": [0.0] * 5,
            "tag": [""] * 5,
        },
        schema={**FILL_SCHEMA, "ts": pl.Int64},
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    trades = round_trips(fills, {"X": (T0_NS + 9 * MINUTE_NS, 95.0)}).to_dicts()
    closed, still_open = trades
    assert closed["is_open"] is False
    assert closed["entry_price"] == 105.0
    assert closed["exit_price"] == (1.5 * 120.0 + 0.5 * 130.0) / 2.0
    assert closed["quantity"] == 2.0
    assert closed["fees"] == 4.0
    assert closed["pnl"] == 245.0 - 210.0 - 4.0
    assert closed["return_pct"] == pytest.approx(100 * 31.0 / 210.0)
    assert still_open["is_open"] is True
    assert still_open["pnl"] == 2.0 * 95.0 - 180.0 - 0.5
    assert still_open["exit_price"] == 95.0


def test_a_fill_through_zero_closes_the_long_and_opens_a_short_with_its_share_of_the_fee() -> None:
    fills = pl.DataFrame(
        {
            "ts": [T0_NS + i * MINUTE_NS for i in range(3)],
            "order_id": [1, 2, -1],
            "instrument": ["X"] * 3,
            "side": ["buy", "sell", "buy"],
            "price": [100.0, 110.0, 120.0],
            "quantity": [1.0, 3.0, 2.0],
            "fee": [1.0, 3.0, 2.0],
            "liquidity": ["taker"] * 3,
            "leaves_quantity": [0.0] * 3,
            "tag": ["", "", "liquidation"],
        },
        schema={**FILL_SCHEMA, "ts": pl.Int64},
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    funding = pl.DataFrame(
        {
            "ts": [T0_NS + 90 * 10**9],
            "instrument": ["X"],
            "rate": [-0.001],
            "mark_price": [115.0],
            "quantity": [-2.0],
            "amount": [0.23],
            "fills_before": [2],
        },
        schema={**FUNDING_SCHEMA, "ts": pl.Int64},
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    trades = round_trips(fills, {"X": (T0_NS, 0.0)}, {"X": 1.0}, funding).to_dicts()
    long, short = trades
    assert (long["side"], long["quantity"], long["fees"]) == ("long", 1.0, 2.0)
    assert long["pnl"] == 110.0 - 100.0 - 2.0
    assert (short["side"], short["entry_price"], short["exit_price"]) == ("short", 110.0, 120.0)
    assert short["fees"] == 3.0 - 1.0 + 2.0
    assert short["funding"] == 0.23
    assert short["pnl"] == 220.0 - 240.0 - 4.0 - 0.23
    assert short["entry_time"] == long["exit_time"]
    assert (long["liquidated"], short["liquidated"]) == (False, True)


# --- SmaCross: exact ties -------------------------------------------------------------------------

# SMA(2) and SMA(3) of these closes tie exactly at bar 3 (0.39 + 0.32 + 0.46 = 1.17 = 1.5 * 0.78);
# bar 2 is below, bar 4 above. Float means of the windows put SMA(2) *above* SMA(3) at bar 3.
TIE_FROM_BELOW = [0.93, 0.39, 0.32, 0.46, 0.87, 0.09, 0.50, 0.45]
# Here bar 2 is above, bar 3 ties, bar 4 is above again.
TIE_FROM_ABOVE = [0.66, 0.67, 0.66, 0.68, 0.95, 0.56]


def test_float_means_would_misjudge_the_tie() -> None:
    close = np.array(TIE_FROM_BELOW)
    assert close[2:4].mean() > close[1:4].mean()  # the trap the exact comparison avoids
    scale = tick_scale(close)
    assert scale == 100
    fast, slow = rolling_sum_exact(close, 2, scale), rolling_sum_exact(close, 3, scale)
    assert fast[3] * 3 == slow[3] * 2 == 234.0


def test_cross_up_through_an_exact_tie_is_signalled_on_the_bar_after_the_tie() -> None:
    signal = sma_cross_signals(np.array(TIE_FROM_BELOW), 2, 3)
    # bar 3: fast == slow is not "fast > slow"; bar 4: fast > slow and fast[3] <= slow[3]
    assert signal.tolist() == [0, 0, 0, 0, 1, 0, -1, 1]


def test_touching_the_slow_average_from_above_and_rising_again_counts_as_a_cross_up() -> None:
    signal = sma_cross_signals(np.array(TIE_FROM_ABOVE), 2, 3)
    assert signal.tolist() == [0, 0, 0, 0, 1, 0]


def test_crossovers_rule_on_integer_sums() -> None:
    # fast and slow as window sums of 1 and 1 bars: the sign of fast - slow is the state.
    fast = np.array([np.nan, 1.0, 2.0, 2.0, 3.0, 2.0, 2.0, 1.0])
    slow = np.array([np.nan, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0])
    # states: below, tie, tie, above, tie, tie, below
    assert crossovers(fast, 1, slow, 1).tolist() == [0, 0, 0, 0, 1, 0, 0, -1]


def test_smacross_in_the_engine_enters_at_the_open_after_the_tie_cross() -> None:
    close = TIE_FROM_BELOW
    frame = pl.DataFrame(
        {
            "timestamp_ms": [1_700_000_000_000 + i * 60_000 for i in range(len(close))],
            "open": [close[0], *close[:-1]],
            "high": [max(a, b) for a, b in zip([close[0], *close[:-1]], close, strict=True)],
            "low": [min(a, b) for a, b in zip([close[0], *close[:-1]], close, strict=True)],
            "close": close,
            "volume": [1_000.0] * len(close),
        }
    )
    result = Backtest(frame, SmaCross, cash=1_000.0).run(fast=2, slow=3)
    fills = result.fills.with_columns(pl.col("ts").dt.epoch("ms"))
    # signal +1 at bar 4 -> buy at bar 5's open (0.87); -1 at bar 6 -> sell at bar 7's open (0.50)
    assert fills.select("side", "price").rows() == [("buy", 0.87), ("sell", 0.50)]
    assert fills["ts"].to_list() == [1_700_000_000_000 + 5 * 60_000, 1_700_000_000_000 + 7 * 60_000]


def test_the_statistics_take_the_same_values_from_the_trades_summary_as_from_the_frame() -> None:
    rows = [(100.0 + i % 7, 101.0 + i % 7, 99.0 + i % 7, 100.5 + i % 7, 10.0) for i in range(60)]
    result = Backtest(bars_frame(rows), SmaCross, fee_rate=0.001, mode="compiled").run(
        fast=3, slow=8
    )
    fills, equity = result.fills, result.equity
    assert result.trades.height > 1
    last = {"BTC/USDT": (int(equity["ts"].dt.epoch("ns")[-1]), 101.0)}
    for taken in (fills, fills.clear()):
        record = round_trip_record(taken, last)
        frame = record.frame()
        summary = record.summary
        assert list(summary.schema.items()) == list(SUMMARY_SCHEMA.items())
        assert summary.drop("long").equals(frame.select("is_open", "pnl", "return_pct", "duration"))
        assert summary["long"].to_list() == [side == "long" for side in frame["side"]]
        knobs: dict[str, Any] = {
            "initial_cash": 10_000.0,
            "fees_paid": 1.0,
            "first_close": 100.5,
            "last_close": 101.5,
            "exposure": 30,
        }
        assert compute_stats(equity, summary, **knobs) == compute_stats(equity, frame, **knobs)
    assert result.trades is result.trades  # built once, when first read


@pytest.mark.parametrize("unit", ["ns", "us", "ms"])
def test_whole_seconds_are_the_total_seconds_polars_gives(unit: str) -> None:
    per = {"ns": 10**9, "us": 10**6, "ms": 10**3}[unit]
    ticks = [
        0,
        1,
        -1,
        per - 1,
        -(per - 1),
        per,
        -per,
        3 * per + 7,
        -3 * per - 7,
        10**17 // per * per,
    ]
    durations = pl.Series(ticks, dtype=pl.Int64).cast(pl.Duration(unit))  # type: ignore[arg-type]
    expected = durations.dt.total_seconds().to_numpy()
    got = whole_seconds(durations)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
    with_null = pl.Series([per, None], dtype=pl.Int64).cast(pl.Duration(unit))  # type: ignore[arg-type]
    assert np.array_equal(
        whole_seconds(with_null), with_null.dt.total_seconds().to_numpy(), equal_nan=True
    )


def test_a_running_peak_given_is_numpys_maximum_but_for_a_zeros_sign() -> None:
    """`compute_stats` takes the peak a pass over the equity kept; of equal zeros a pass keeps the
    first, numpy's maximum may not: a zero peak is taken from the values again."""
    values = np.array([100.0, 120.0, np.nextafter(120.0, 0.0)])
    assert _peak(values, 120.0) == float(np.maximum.reduce(values)) == 120.0
    assert math.isnan(_peak(np.array([1.0, np.nan]), math.nan))
    assert _peak(values, None) == 120.0
    zeros = np.array([-0.0, 0.0, -1.0])
    assert math.copysign(1.0, _peak(zeros, -0.0)) == math.copysign(
        1.0, float(np.maximum.reduce(zeros))
    )
