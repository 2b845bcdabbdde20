"""Our engine against its peers, in one process, on the same synthetic 1-minute series and the same
SMA(10/30) crossover with next-open fills:

    pip install -e .[bench]
    python scripts/bench_peers.py [--sizes 100000 525600] [--skip backtrader]

Peers: backtesting.py (FractionalBacktest, so BTC quantities need not be whole coins), backtrader
(a sizer that spends all cash at the next open), vectorbt (`Portfolio.from_signals`, timed alone and
after a warm-up call so numba compilation is not counted). Ours: the dense loop (every bar through the
bus) and signal mode (only the crossover bars and the bars where orders fill).

Conventions: a 0.1% fee on the 100k series; 0.01% on the year-long one (at 0.1% the strategy loses
nearly all its cash and every framework then stops at its own minimum order size). Every framework
must produce the same round trips (entry and exit bars); final equity is compared with a stated
tolerance, since the frameworks round all-in quantities differently (backtesting.py to 1e-8 BTC).
Peak memory is the process's peak RSS growth during each run (resource.getrusage), so it is only
indicative: a run cannot give memory back to the allocator high-water mark of an earlier one.
"""

from __future__ import annotations

import argparse
import gc
import resource
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

from backtester import Backtest
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


def measured(name: str, run: Callable[[], tuple[list[tuple[int, int]], float]]) -> Outcome:
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    trips, equity = run()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return Outcome(name, seconds, trips, equity, (after - before) / 1024)


def ours(frame: pl.DataFrame, fee: float, mode: str) -> tuple[list[tuple[int, int]], float]:
    result = Backtest(frame, SmaCross, cash=CASH, fee_rate=fee, mode=mode).run(fast=FAST, slow=SLOW)  # type: ignore[arg-type]
    t0 = int(frame["timestamp_ms"][0]) * 1_000_000
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
    vectorbt_run.call_seconds = time.perf_counter() - start  # type: ignore[attr-defined]
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 525_600])
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["backtesting", "backtrader", "vectorbt"]
    )
    args = parser.parse_args()

    # Compile vectorbt's numba kernels before anything is timed.
    if "vectorbt" not in args.skip:
        vectorbt_run(synthetic_bars(2_000), 0.001)

    for n in args.sizes:
        fee = 0.001 if n <= 100_000 else 0.0001
        frame = synthetic_bars(n)
        print(
            f"\n## {n:,} synthetic 1-minute bars, SMA({FAST}/{SLOW}), next-open fills, fee {fee:.2%}\n"
        )
        runs = [
            measured("backtester dense", partial(ours, frame, fee, "dense")),
            measured("backtester signal mode", partial(ours, frame, fee, "signal")),
        ]
        if "backtesting" not in args.skip:
            runs.append(measured("backtesting.py 0.6", partial(backtesting_py, frame, fee)))
        if "backtrader" not in args.skip:
            runs.append(measured("backtrader", partial(backtrader_run, frame, fee)))
        if "vectorbt" not in args.skip:
            whole = measured("vectorbt (signals + from_signals)", partial(vectorbt_run, frame, fee))
            runs.append(whole)
            call = Outcome(
                "vectorbt from_signals call alone",
                vectorbt_run.call_seconds,  # type: ignore[attr-defined]
                whole.round_trips,
                whole.final_equity,
                whole.peak_rss_mb,
            )
            runs.append(call)
        dense, signal = runs[0], runs[1]
        print(
            "| framework | seconds | bars/s | dense ÷ it | signal ÷ it | peak RSS +MB | agreement with dense |"
        )
        print("|---|---:|---:|---:|---:|---:|---|")
        for r in runs:
            agreement = "reference" if r is dense else compare(dense, r)
            print(
                f"| {r.name} | {r.seconds:.3f} | {n / r.seconds:,.0f} | "
                f"{r.seconds / dense.seconds:.2f}x | {r.seconds / signal.seconds:.2f}x | "
                f"{r.peak_rss_mb:,.0f} | {agreement} |"
            )
        print(
            "\n(`dense ÷ it` above 1 means our dense loop is that many times faster than the row.)"
        )


if __name__ == "__main__":
    main()
