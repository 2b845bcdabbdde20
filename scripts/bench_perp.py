"""What a perpetual costs over spot: the same Python `on_bar` strategy on a year of 1-minute bars, on
a spot instrument with a cash account and on a perpetual with a margin account, its mark series and
funding every 8 hours.

    .venv/bin/python scripts/bench_perp.py [--bars 525600] [--repeat 3]

Both runs are dense (every bar reaches `on_bar`), timed warm (after one untimed run of each), in
alternation, in one process; the ratio of the medians is the figure (target <= 1.3x). CPU seconds
are shown next to wall seconds: on a machine that other work shares, they are the steadier figure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import START_MS, synthetic_bars

from backtester import Backtest, Bar, Instrument, Strategy

HOUR_MS = 3_600_000


class Params(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lookback: int = 240


class Breakout(Strategy[Params]):
    """Long above the last `lookback` closes' high, out below their low: every bar is looked at."""

    Params = Params

    def on_start(self) -> None:
        close = self.ctx.data[self.ctx.primary]["close"]
        self.upper = close.rolling_max(self.params.lookback).shift(1).fill_null(np.inf).to_list()
        self.lower = close.rolling_min(self.params.lookback).shift(1).fill_null(0.0).to_list()

    def on_bar(self, bar: Bar) -> None:
        i = bar.index
        if self.position == 0.0:
            if bar.close > self.upper[i]:
                self.buy(fraction=0.5)
        elif bar.close < self.lower[i]:
            self.close()


def funding_rates(frame: pl.DataFrame) -> pl.DataFrame:
    """A rate every 8 hours over the bars, a few ms after each boundary, as exchanges stamp them."""
    first, last = int(frame["timestamp_ms"][0]), int(frame["timestamp_ms"][-1])
    times = np.arange(first - first % (8 * HOUR_MS), last + 1, 8 * HOUR_MS) + 17
    rng = np.random.Generator(np.random.PCG64(3))
    return pl.DataFrame({"timestamp_ms": times, "funding_rate": rng.normal(1e-4, 2e-4, len(times))})


def marks(frame: pl.DataFrame) -> pl.DataFrame:
    """A mark a hair off the last price, bar for bar (exchanges mark from an index of venues)."""
    return frame.with_columns(pl.col("open", "high", "low", "close") * 1.0002)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=525_600)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    frame = synthetic_bars(args.bars)
    assert int(frame["timestamp_ms"][0]) == START_MS
    runs: dict[str, Any] = {
        "spot (cash account)": Backtest(
            frame, Breakout, cash=100_000, fee_rate=0.0004, mode="dense"
        ),
        "perpetual (margin, funding, mark)": Backtest(
            frame,
            Breakout,
            cash=100_000,
            fee_rate=0.0004,
            mode="dense",
            instrument=Instrument("BTC/USDT:USDT", leverage=3),
            funding=funding_rates(frame),
            mark=marks(frame),
        ),
    }
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for name, bt in runs.items():
        result = bt.run()  # warm: imports, first calls, kernels
        print(f"{name}: {result.stats['trades']} trades, {result.funding.height} funding payments")
    for _ in range(args.repeat):
        for name, bt in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            bt.run()
            seconds[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    for label, measured in (("wall", seconds), ("cpu", cpu)):
        medians = {name: statistics.median(times) for name, times in measured.items()}
        for name, median in medians.items():
            runs_text = ", ".join(f"{s:.3f}" for s in measured[name])
            print(f"{label:<4} {name:<36} {median:8.3f} s  (runs: {runs_text})")
        spot, perp = medians.values()
        print(
            f"{label:<4} perpetual / spot: {perp / spot:.2f}x (target <= 1.3x) on {args.bars:,} bars"
        )


if __name__ == "__main__":
    main()
