"""Bars become known at their close: a 1h stream next to a 1m one is delivered after the last minute
of its hour, and an order placed then is first eligible on the next minute."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import polars as pl

from backtester import Backtest, Strategy
from backtester.domain.messages import Bar

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
T0_MS = 1_709_251_200_000  # 2024-03-01 00:00 UTC, on the hour


def minutes(hours: int, seed: int = 1) -> pl.DataFrame:
    rng = np.random.Generator(np.random.PCG64(seed))
    n = hours * 60
    close = np.round(100 + np.cumsum(rng.normal(0, 0.1, n)), 2)
    open_ = np.concatenate(([100.0], close[:-1]))
    return pl.DataFrame(
        {
            "timestamp_ms": T0_MS + np.arange(n, dtype=np.int64) * MINUTE_MS,
            "open": open_,
            "high": np.maximum(open_, close) + 0.05,
            "low": np.minimum(open_, close) - 0.05,
            "close": close,
            "volume": np.ones(n),
        }
    )


def hourly(frame: pl.DataFrame) -> pl.DataFrame:
    return (
        frame.group_by((pl.col("timestamp_ms") // HOUR_MS * HOUR_MS), maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
        .sort("timestamp_ms")
    )


class NoParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class Probe(Strategy[NoParams]):
    """Records, whenever an hour's bar arrives, the last minute seen so far; buys on the first."""

    def on_start(self) -> None:
        self.arrivals: list[tuple[int, int | None, int]] = []

    def on_bar(self, bar: Bar) -> None:
        if bar.instrument != "BTC-1H/USDT":
            return
        minute = self.ctx.last_bar.get("BTC/USDT")
        self.arrivals.append(
            (bar.ts_event, None if minute is None else minute.ts_event, self.ctx.now)
        )
        if len(self.arrivals) == 1:
            self.buy(fraction=0.5)


def run_probe() -> tuple[Any, Any]:
    frame = minutes(3)
    data = {"BTC/USDT": frame, "BTC-1H/USDT": hourly(frame)}
    engine = Backtest(data, Probe, cash=10_000, mode="dense").engine()
    result = engine.run()
    return engine.strategy, result


def test_an_hours_bar_arrives_after_the_last_minute_of_that_hour() -> None:
    probe, _ = run_probe()
    assert len(probe.arrivals) == 3
    for hour_open, last_minute, now in probe.arrivals:
        assert last_minute == hour_open + 59 * MINUTE_MS * 1_000_000
        assert now == hour_open + HOUR_MS * 1_000_000  # known at its close


def test_an_order_placed_on_an_hours_bar_fills_at_the_next_minutes_open() -> None:
    _, result = run_probe()
    fill = result.fills.row(0, named=True)
    first_hour_close_ns = (T0_MS + HOUR_MS) * 1_000_000
    assert fill["instrument"] == "BTC/USDT"
    assert int(result.fills["ts"].dt.epoch("ns")[0]) == first_hour_close_ns  # 01:00, the next open
    order = result.orders.row(0, named=True)
    assert int(result.orders["ts_submitted"].dt.epoch("ns")[0]) == first_hour_close_ns
    assert order["status"] == "filled"
    assert fill["price"] == minutes(3)["open"][60]


def test_bars_carry_their_open_and_close_times() -> None:
    class Times(Strategy[NoParams]):
        def on_start(self) -> None:
            self.seen: list[tuple[str, int, int]] = []

        def on_bar(self, bar: Bar) -> None:
            self.seen.append((bar.instrument, bar.ts_event, bar.ts_init))

    frame = minutes(2)
    engine = Backtest({"BTC/USDT": frame, "BTC-1H/USDT": hourly(frame)}, Times).engine()
    engine.run()
    seen = engine.strategy.seen  # type: ignore[attr-defined]
    for instrument, opened, known in seen:
        span = HOUR_MS if instrument.startswith("BTC-1H") else MINUTE_MS
        assert known - opened == span * 1_000_000
    assert [k for _, _, k in seen] == sorted(k for _, _, k in seen)  # delivered as they close
