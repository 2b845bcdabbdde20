"""Our engine against its peers, in one process, on the same synthetic 1-minute series and the same
SMA(10/30) crossover with next-open fills:

    pip install -e .[bench]
    python scripts/bench_peers.py [--sizes 100000 525600] [--skip backtrader]

Peers: backtesting.py (FractionalBacktest, so BTC quantities need not be whole coins), backtrader
(a sizer that spends all cash at the next open), vectorbt (`Portfolio.from_signals`, timed alone and
after a warm-up call so numba compilation is not counted). Ours, each timed from the validated frame
in memory to the finished result (indicators, signals, simulation, trades, statistics, digest): the
dense loop (every bar through the bus), signal mode (only the crossover bars and the bars where
orders fill, through the bus) and the compiled order path (the default for SmaCross; adr/0011), after
one warm-up run so that loading its compiled kernels is not counted either.

`--five-year` also runs SmaCross on 2,628,000 bars (five years of minutes) on the compiled path in a
fresh process: seconds after the data is loaded, first run and second run, and the process's peak RSS.

Conventions: a 0.1% fee on the 100k series; 0.01% on the year-long one (at 0.1% the strategy loses
nearly all its cash and every framework then stops at its own minimum order size). Every framework
must produce the same round trips (entry and exit bars); final equity is compared with a stated
tolerance, since the frameworks round all-in quantities differently (backtesting.py to 1e-8 BTC).
Sub-second timings (ours compiled, vectorbt's from_signals call) are the median of 7 runs.
Peak memory is the process's peak RSS growth during each run (resource.getrusage), so it is only
indicative: a run cannot give memory back to the allocator high-water mark of an earlier one.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import synthetic_bars

from backtester import Backtest, RunResult
from backtester.strategies import SmaCross
from backtester.strategy.library.sma_cross import sma_cross_signals

CASH = 100_000.0
FAST, SLOW = 10, 30


@dataclass
class Outcome:
    name: str
    seconds: float
    round_trips: list[tuple[int, int]]  # (entry bar, exit bar)
    final_equity: float
    peak_rss_mb: float
    note: str = ""


FAST_REPEATS = 7


def measured(
    name: str, run: Callable[[], tuple[list[tuple[int, int]], float]], note: str = ""
) -> Outcome:
    """One run; a run under half a second is repeated and its median taken (a single sub-second
    timing on a shared machine is mostly noise)."""
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    trips, equity = run()
    seconds = [time.perf_counter() - start]
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if seconds[0] < 0.5:
        for _ in range(FAST_REPEATS - 1):
            gc.collect()
            start = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - start)
    return Outcome(name, statistics.median(seconds), trips, equity, (after - before) / 1024, note)


def ours(name: str, bt: Backtest, repeats: int) -> Outcome:
    """`bt` holds the validated data; only `run` is timed (median of `repeats`), not the reading
    of round trips from its result below."""
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = bt.run(fast=FAST, slow=SLOW)
        seconds.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    trips, equity = round_trips_of(bt, result)
    return Outcome(name, statistics.median(seconds), trips, equity, (after - before) / 1024)


def round_trips_of(bt: Backtest, result: RunResult) -> tuple[list[tuple[int, int]], float]:
    t0 = int(bt.data["BTC/USDT"]["ts"][0])
    closed = result.trades.filter(~pl.col("is_open"))
    entry = ((closed["entry_time"].dt.epoch("ns").to_numpy() - t0) // 60_000_000_000).tolist()
    exit_ = ((closed["exit_time"].dt.epoch("ns").to_numpy() - t0) // 60_000_000_000).tolist()
    return list(zip(entry, exit_, strict=True)), float(result.stats["final_equity"])


def pandas_frame(frame: pl.DataFrame) -> Any:
    import pandas as pd

    index = pd.to_datetime(frame["timestamp_ms"].to_numpy(), unit="ms")
    return pd.DataFrame(
        {
            "Open": frame["open"].to_numpy(),
            "High": frame["high"].to_numpy(),
            "Low": frame["low"].to_numpy(),
            "Close": frame["close"].to_numpy(),
            "Volume": frame["volume"].to_numpy(),
        },
        index=index,
    )


def backtesting_py(frame: pl.DataFrame, fee: float) -> tuple[list[tuple[int, int]], float]:
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    signal = sma_cross_signals(frame["close"].to_numpy(), FAST, SLOW)

    class Cross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.signal = self.I(lambda: signal, name="signal", plot=False)

        def next(self) -> None:
            s = self.signal[-1]
            if s > 0 and not self.position:
                self.buy()
            elif s < 0 and self.position:
                self.position.close()

    data = pandas_frame(frame)
    stats = FractionalBacktest(
        data, Cross, cash=CASH, commission=fee, fractional_unit=1e-8, finalize_trades=False
    ).run()
    trades = stats["_trades"]
    trips = list(zip(trades["EntryBar"].tolist(), trades["ExitBar"].tolist(), strict=True))
    return trips, float(stats["Equity Final [$]"])


def backtrader_run(frame: pl.DataFrame, fee: float) -> tuple[list[tuple[int, int]], float]:
    import backtrader as bt

    signal = sma_cross_signals(frame["close"].to_numpy(), FAST, SLOW).tolist()
    trips: list[tuple[int, int]] = []

    class Cross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.entry_bar = -1

        def next(self) -> None:
            i = len(self) - 1
            s = signal[i]
            if s > 0 and not self.position:
                # Spend all cash at the next open: size with the next bar's open, known to the sizer
                # here only because the benchmark precomputes it (backtrader sizes at submission).
                nxt = self.data.open[1] if i + 1 < len(signal) else self.data.close[0]
                self.buy(size=self.broker.getcash() / (nxt * (1 + fee)) * (1 - 1e-12))
            elif s < 0 and self.position:
                self.close()

        def notify_trade(self, trade: Any) -> None:
            if trade.isclosed:
                trips.append((trade.baropen - 1, trade.barclose - 1))

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=pandas_frame(frame)))
    cerebro.addstrategy(Cross)
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=fee)
    cerebro.run(preload=True, runonce=False)
    return trips, float(cerebro.broker.getvalue())


def vectorbt_run(frame: pl.DataFrame, fee: float) -> tuple[list[tuple[int, int]], float]:
    import pandas as pd
    import vectorbt as vbt

    data = pandas_frame(frame)
    signal = pd.Series(sma_cross_signals(frame["close"].to_numpy(), FAST, SLOW), index=data.index)
    entries = (signal > 0).shift(1, fill_value=False)
    exits = (signal < 0).shift(1, fill_value=False)
    start = time.perf_counter()
    pf = vbt.Portfolio.from_signals(
        data["Close"], entries, exits, price=data["Open"], fees=fee, init_cash=CASH, size=np.inf
    )
    vectorbt_run.call_seconds.append(time.perf_counter() - start)  # type: ignore[attr-defined]
    records = pf.trades.records_readable
    closed = records[records["Status"] == "Closed"]
    index = {ts: i for i, ts in enumerate(data.index)}
    trips = [
        (index[a], index[b])
        for a, b in zip(closed["Entry Timestamp"], closed["Exit Timestamp"], strict=True)
    ]
    return trips, float(pf.final_value())


def compare(reference: Outcome, other: Outcome) -> str:
    same = sum(1 for a, b in zip(reference.round_trips, other.round_trips, strict=False) if a == b)
    n = max(len(reference.round_trips), len(other.round_trips))
    gap = abs(other.final_equity / reference.final_equity - 1.0)
    return f"{same}/{n} round trips equal, final equity {other.final_equity:,.2f} ({gap:.2e} rel.)"


def our_runs(frame: pl.DataFrame, fee: float) -> list[Outcome]:
    started = time.perf_counter()
    Backtest(frame, SmaCross, cash=CASH, fee_rate=fee)
    validation = time.perf_counter() - started
    print(f"validating the frame into our engine's bars (not timed below): {validation:.3f} s")
    runs = []
    for mode, name in (
        ("dense", "dense"),
        ("signal", "signal mode"),
        ("compiled", "compiled path"),
    ):
        bt = Backtest(frame, SmaCross, cash=CASH, fee_rate=fee, mode=mode)  # type: ignore[arg-type]
        if mode == "compiled":
            bt.run(fast=FAST, slow=SLOW)  # loads (or compiles) the kernels
        runs.append(ours(f"backtester {name}", bt, FAST_REPEATS if mode == "compiled" else 1))
    return runs


def five_year_child() -> None:
    """Runs in a fresh process, so its peak RSS is this run's alone."""
    frame = synthetic_bars(FIVE_YEARS)
    bt = Backtest(frame, SmaCross, cash=CASH, fee_rate=0.0001, mode="compiled")
    del frame
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        result = bt.run(fast=FAST, slow=SLOW)
        timings.append(time.perf_counter() - started)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{FIVE_YEARS:,} bars, {result.stats['fills']:,} fills: first run {timings[0]:.3f} s "
        f"(includes importing numba and loading the compiled kernels), second run "
        f"{timings[1]:.3f} s = {FIVE_YEARS / timings[1]:,.0f} bars/s; peak RSS of the whole "
        f"process {peak_mb:,.0f} MB (targets: < 1 s, < 1 GB)"
    )


FIVE_YEARS = 5 * 525_600


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 525_600])
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["backtesting", "backtrader", "vectorbt"]
    )
    parser.add_argument("--five-year", action="store_true", help="also the 2.6M-bar run")
    parser.add_argument("--five-year-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.five_year_child:
        five_year_child()
        return

    # Compile vectorbt's numba kernels before anything is timed.
    if "vectorbt" not in args.skip:
        vectorbt_run.call_seconds = []  # type: ignore[attr-defined]
        vectorbt_run(synthetic_bars(2_000), 0.001)

    for n in args.sizes:
        fee = 0.001 if n <= 100_000 else 0.0001
        frame = synthetic_bars(n)
        print(
            f"\n## {n:,} synthetic 1-minute bars, SMA({FAST}/{SLOW}), next-open fills, fee {fee:.2%}\n"
        )
        runs = our_runs(frame, fee)
        if "backtesting" not in args.skip:
            runs.append(measured("backtesting.py 0.6", partial(backtesting_py, frame, fee)))
        if "backtrader" not in args.skip:
            runs.append(measured("backtrader", partial(backtrader_run, frame, fee)))
        if "vectorbt" not in args.skip:
            vectorbt_run.call_seconds = []  # type: ignore[attr-defined]
            for _ in range(FAST_REPEATS - 1):
                vectorbt_run(frame, fee)  # only its from_signals call is kept from these
            whole = measured("vectorbt (signals + from_signals)", partial(vectorbt_run, frame, fee))
            runs.append(whole)
            call = Outcome(
                "vectorbt from_signals call alone",
                statistics.median(vectorbt_run.call_seconds),  # type: ignore[attr-defined]
                whole.round_trips,
                whole.final_equity,
                whole.peak_rss_mb,
            )
            runs.append(call)
        dense, compiled = runs[0], runs[2]
        print(
            "\n| framework | seconds | bars/s | dense ÷ it | compiled ÷ it | peak RSS +MB "
            "| agreement with dense |"
        )
        print("|---|---:|---:|---:|---:|---:|---|")
        for r in runs:
            agreement = "reference" if r is dense else compare(dense, r)
            print(
                f"| {r.name} | {r.seconds:.3f} | {n / r.seconds:,.0f} | "
                f"{r.seconds / dense.seconds:.2f}x | {r.seconds / compiled.seconds:.2f}x | "
                f"{r.peak_rss_mb:,.0f} | {agreement} |"
            )
        print(
            "\n(`dense ÷ it` above 1 means our dense loop is that many times faster than the row.)"
        )
        by_name = {r.name: r for r in runs}
        peer = by_name.get("backtesting.py 0.6")
        if peer is not None:
            print(
                f"dense vs backtesting.py: {peer.seconds / dense.seconds:.2f}x faster (target >= 2x)"
            )
        call_alone = by_name.get("vectorbt from_signals call alone")
        if call_alone is not None:
            print(
                f"compiled path (whole run) vs vectorbt's from_signals call alone: "
                f"{call_alone.seconds / compiled.seconds:.2f}x faster (target >= 2x)"
            )

    if args.five_year:
        print("\n## five years of 1-minute bars, compiled path, fresh process\n")
        subprocess.run([sys.executable, __file__, "--five-year-child"], check=True)


if __name__ == "__main__":
    main()
