"""The charts draw the run's own data: every fill, the stats' final equity, the bars' extremes."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from backtester.report.data import RunData, epoch_ms, monthly_returns
from backtester.report.distributions import pnl_histogram
from backtester.report.sweep_figures import objective_heatmap


def _renderer(figure: Any, name: str) -> Any:
    found = [r for r in figure.renderers if r.name == name]
    assert len(found) == 1, f"no single renderer named {name!r}"
    return found[0]


def _column(figure: Any, name: str, column: str) -> np.ndarray:
    return np.asarray(_renderer(figure, name).data_source.data[column])


def test_one_marker_per_fill_at_the_fills_time_and_price(
    small_data: RunData, charts: dict[str, Any]
) -> None:
    price = charts["price-0"]
    x = np.concatenate([_column(price, f"fills-{k}", "x") for k in ("entry", "exit")])
    y = np.concatenate([_column(price, f"fills-{k}", "price") for k in ("entry", "exit")])
    fills = small_data.fills
    assert len(x) == fills.height > 0
    order = np.lexsort((y, x))
    expected = np.lexsort((fills["price"].to_numpy(), epoch_ms(fills["ts"])))
    assert np.array_equal(x[order], epoch_ms(fills["ts"])[expected])
    assert np.array_equal(y[order], fills["price"].to_numpy()[expected])


def test_entries_are_buys_and_exits_are_sells_for_a_long_only_strategy(
    small_data: RunData, charts: dict[str, Any]
) -> None:
    price = charts["price-0"]
    entries = _renderer(price, "fills-entry").data_source.data["side"]
    exits = _renderer(price, "fills-exit").data_source.data["side"]
    assert set(entries) == {"buy"} and set(exits) == {"sell"}
    assert len(entries) == small_data.trades.height


def test_final_equity_shown_equals_the_stats(small_data: RunData, charts: dict[str, Any]) -> None:
    equity = charts["equity"]
    final = float(small_data.stats["final_equity"])
    assert _column(equity, "equity", "equity")[-1] == final
    assert _column(equity, "final-equity", "y")[0] == final
    labels = [a for a in equity.center if getattr(a, "name", None) == "final-equity-label"]
    assert labels and labels[0].text == f"final {final:,.2f}"


def test_max_drawdown_marked_equals_the_stats(small_data: RunData, charts: dict[str, Any]) -> None:
    drawdown = charts["drawdown"]
    assert _column(drawdown, "max-drawdown", "y")[0] == small_data.stats["max_drawdown_pct"]
    assert _column(drawdown, "drawdown", "drawdown_pct").min() == pytest.approx(
        small_data.stats["max_drawdown_pct"]
    )


def test_candles_span_the_bars_extremes(small_data: RunData, charts: dict[str, Any]) -> None:
    price = charts["price-0"]
    bars = small_data.bars["BTC/USDT"]
    highs = np.concatenate([_column(price, f"candles-{d}", "high") for d in ("up", "down")])
    lows = np.concatenate([_column(price, f"candles-{d}", "low") for d in ("up", "down")])
    assert highs.max() == bars["high"].max()
    assert lows.min() == bars["low"].min()


def test_each_resting_stop_and_limit_order_is_a_level(
    small_data: RunData, charts: dict[str, Any]
) -> None:
    price = charts["price-0"]
    orders = small_data.orders
    stops = orders.filter(pl.col("type") == "stop")
    limits = orders.filter(pl.col("type") == "limit")
    assert stops.height > 0 and limits.height > 0
    assert sorted(_column(price, "levels-stop", "price")) == sorted(stops["stop_price"].to_list())
    assert sorted(_column(price, "levels-limit", "price")) == sorted(
        limits["limit_price"].to_list()
    )


def test_trade_histogram_counts_every_closed_trade(
    small_data: RunData, charts: dict[str, Any]
) -> None:
    histogram = pnl_histogram(small_data.trades)
    counts = _column(histogram, "pnl-histogram", "count")
    closed = small_data.trades.filter(~pl.col("is_open")).height
    assert counts.sum() == closed == small_data.stats["trades"]


def test_monthly_returns_compound_to_the_total_return(
    small_data: RunData, charts: dict[str, Any]
) -> None:
    heatmap = charts["monthly-returns"]
    source = _renderer(heatmap, "monthly-returns").data_source.data
    months = monthly_returns(small_data.equity, small_data.stats["initial_equity"])
    shown = dict(
        zip(zip(source["year"], source["month"], strict=True), source["return_pct"], strict=True)
    )
    assert len(shown) == months.height + months["year"].n_unique()
    compounded = np.prod(1.0 + months["return_pct"].to_numpy() / 100.0) - 1.0
    assert compounded * 100.0 == pytest.approx(small_data.stats["total_return_pct"])


def test_time_charts_share_one_x_range(small_data: RunData, charts: dict[str, Any]) -> None:
    ranges = {id(charts[key].x_range) for key in ("price-0", "equity", "drawdown", "exposure")}
    assert len(ranges) == 1


def test_heatmap_cell_holds_the_best_objective_of_its_pair() -> None:
    ok = pl.DataFrame(
        {
            "param.fast": [5, 5, 10, 10, 5],
            "param.slow": [20, 40, 20, 40, 20],
            "sharpe": [0.5, 1.5, -0.2, 0.9, 0.7],
        }
    )
    figure = objective_heatmap(ok, "param.fast", "param.slow", "sharpe", maximize=True)
    data = _renderer(figure, "objective-heatmap").data_source.data
    cells = dict(zip(zip(data["x"], data["y"], strict=True), data["value"], strict=True))
    assert cells == {("5", "20"): 0.7, ("5", "40"): 1.5, ("10", "20"): -0.2, ("10", "40"): 0.9}
    assert list(figure.x_range.factors) == ["5", "10"]
