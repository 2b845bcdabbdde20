"""Multi-timeframe strategies: `timeframes = {"1h": n}` and `ctx.bars("1h")` give only closed hours,
resampled from the 1m data or taken from a given series; dense and signal mode agree bit for bit;
the look-ahead check passes them and flags a misaligned one."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import msgspec
import numpy as np
import polars as pl
import pytest

from backtester import Backtest, SignalStrategy, Strategy
from backtester import indicators as ta
from backtester.cli import main
from backtester.domain.messages import Bar
from backtester.strategy.context import StrategyError
from tests.integration.test_time_model import HOUR_MS, minutes

NS = 1_000_000


class NoParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


def hours_of(frame: pl.DataFrame) -> pl.DataFrame:
    """An independent resample: complete hours only."""
    grouped = (
        frame.group_by(pl.col("timestamp_ms") // HOUR_MS * HOUR_MS, maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
            pl.len().alias("n"),
        )
        .filter(pl.col("n") == 60)
    )
    return grouped.drop("n").sort("timestamp_ms")


class Watcher(Strategy[NoParams]):
    timeframes: ClassVar[dict[str, int]] = {"1h": 3}

    def on_start(self) -> None:
        self.whole = self.ctx.bars("1h").height
        self.views: list[tuple[int, int, int | None]] = []

    def on_bar(self, bar: Bar) -> None:
        hours = self.ctx.bars("1h")
        last = None if hours.is_empty() else int(hours["ts"][-1])
        self.views.append((self.ctx.now, hours.height, last))


def test_bars_of_a_higher_timeframe_are_the_closed_ones_only() -> None:
    frame = minutes(5)
    engine = Backtest(frame, Watcher).engine()
    engine.run()
    watcher = engine.strategy
    assert watcher.whole == 5  # type: ignore[attr-defined]
    for now, height, last in watcher.views:  # type: ignore[attr-defined]
        closed = (now // NS - frame["timestamp_ms"][0]) // HOUR_MS
        assert height == min(closed, 3)
        assert (
            last is None
            if closed == 0
            else last == (frame["timestamp_ms"][0] + (closed - 1) * HOUR_MS) * NS
        )


def test_resampled_hours_equal_an_independent_resample_and_a_given_series() -> None:
    frame = minutes(4)
    engine = Backtest(frame, Watcher).engine()
    view = engine.ctx.bars("1h")
    expected = hours_of(frame)
    assert view["ts"].to_list() == [t * NS for t in expected["timestamp_ms"]]
    for column in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(view[column].to_numpy(), expected[column].to_numpy())
    given = Backtest(frame, Watcher, higher_timeframes={"1h": expected}).engine()
    assert given.ctx.bars("1h").equals(view)


class HourlyTrend(SignalStrategy[NoParams]):
    """Long while the last closed hour's close is above the EMA(3) of hourly closes."""

    timeframes: ClassVar[dict[str, int]] = {"1h": 10}

    def signals(self) -> np.ndarray:
        hours = self.ctx.bars("1h")
        above = (hours["close"].to_numpy() > ta.ema(hours["close"], 3)).astype(float)
        state = self.ctx.align("1h", above)
        state = np.nan_to_num(state)
        return np.diff(state, prepend=0.0).astype(np.int8)


class HourlyTrendEvents(HourlyTrend):
    """The same decisions in `on_bar` from `ctx.bars`, declaring the bars where it may act."""

    def on_bar(self, bar: Bar) -> None:
        hours = self.ctx.bars("1h")
        if hours.height < 3 or self.signal[bar.index] == 0:
            return
        super().on_bar(bar)


def test_dense_and_signal_mode_give_the_same_digest() -> None:
    frame = minutes(48, seed=7)
    results = {
        mode: Backtest(frame, HourlyTrendEvents, fee_rate=0.001, mode=mode).run()
        for mode in ("dense", "signal")
    }
    compiled = Backtest(frame, HourlyTrend, fee_rate=0.001, mode="compiled").run()
    assert results["dense"].fills.height > 4
    assert results["dense"].digest == results["signal"].digest == compiled.digest


def test_the_look_ahead_check_passes_closed_hours_and_flags_hours_aligned_by_open_time() -> None:
    class ByOpenTime(HourlyTrend):
        def signals(self) -> np.ndarray:
            hours = self.ctx.bars("1h")
            above = (hours["close"].to_numpy() > ta.ema(hours["close"], 3)).astype(float)
            # Wrong: an hour's close is used from its first minute on.
            opens = self.ctx.data[self.ctx.primary]["ts"].to_numpy()
            at = np.searchsorted(hours["ts"].to_numpy(), opens, side="right") - 1
            state = np.where(at >= 0, above[np.maximum(at, 0)], 0.0)
            return np.diff(state, prepend=0.0).astype(np.int8)

    frame = minutes(24, seed=3)
    assert Backtest(frame, HourlyTrend).check_lookahead().ok
    report = Backtest(frame, ByOpenTime).check_lookahead()
    assert not report.ok
    assert {f.kind for f in report.findings} & {"signal", "order"}


def test_an_undeclared_timeframe_is_refused_by_name() -> None:
    class Undeclared(Strategy[NoParams]):
        def on_start(self) -> None:
            self.ctx.bars("4h")

    with pytest.raises(Exception, match="timeframe '4h' of BTC/USDT is not declared"):
        Backtest(minutes(5), Undeclared).run()
    assert issubclass(StrategyError, RuntimeError)


def test_a_run_given_a_higher_timeframe_series_saves_it_and_verifies(tmp_path: Path) -> None:
    frame = minutes(4)
    given = Backtest(frame, Watcher, higher_timeframes={"1h": hours_of(frame)})
    result = given.run()
    directory = result.save(tmp_path)
    config = (directory / "config.toml").read_text()
    assert 'series = "higher"' in config and 'timeframe = "1h"' in config
    assert main(["verify", str(directory)]) == 0


def test_a_given_series_is_seen_only_up_to_the_data_end_even_in_on_start() -> None:
    # Six hours given, four hours of minutes run: the last two hours close after the run's end.
    six, four = minutes(6), minutes(4)
    engine = Backtest(four, Watcher, higher_timeframes={"1h": hours_of(six)}).engine()
    engine.run()
    resampled = Backtest(four, Watcher).engine()
    resampled.run()
    assert engine.strategy.whole == resampled.strategy.whole == 4  # type: ignore[attr-defined]
    assert engine.strategy.views == resampled.strategy.views  # type: ignore[attr-defined]
