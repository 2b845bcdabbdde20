"""Engine throughput: bars/second of SmaCross on a deterministic synthetic 1-minute series, next to a
plain-Python loop that computes the same trades, measured in the same run.

    python scripts/bench.py [--bars 525600] [--repeat 3]

The engine's modes (dense: every bar through the bus; signal: only the crossover bars and the bars
where orders fill; compiled: the strategy's signal plan in one compiled loop, adr/0011) and the loop
start from the same in-memory frame, so the difference is what the engine costs (bus, risk, venue,
ledger, results, statistics and digest) over the bare trading arithmetic. The script checks that
they all produce identical fills and that the modes' digests agree.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import synthetic_bars

from backtester import Backtest
from backtester.strategies import SmaCross
from backtester.strategy.library.sma_cross import sma_cross_signals

FEE = 0.001
CASH = 100_000.0


def plain_loop(
    open_: list[float], signal: list[int], fee: float, cash: float
) -> tuple[list[tuple[int, float, float]], float]:
    """SmaCross by hand: act at the next bar's open on each crossover; all-in buys with a fee reserve."""
    fills: list[tuple[int, float, float]] = []
    position = 0.0
    pending = 0
    for i, price in enumerate(open_):
        if pending > 0:
            quantity = (1.0 * cash) / (price * (1.0 + fee))
            # Spot cash may not go negative: drop the ulp that division can overshoot by.
            while quantity * price + quantity * price * fee > cash:
                quantity = math.nextafter(quantity, 0.0)
            notional = quantity * price
            cash -= notional + notional * fee
            position += quantity
            fills.append((i, price, quantity))
        elif pending < 0:
            quantity = 1.0 * position
            notional = quantity * price
            cash += notional - notional * fee
            position -= quantity
            fills.append((i, price, quantity))
        pending = 0
        s = signal[i]
        if s > 0 and position == 0.0:
            pending = 1
        elif s < 0 and position > 0.0:
            pending = -1
    return fills, cash


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--bars", type=int, default=525_600)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    frame = synthetic_bars(args.bars)
    modes = ("dense", "signal", "compiled")
    backtests = {m: Backtest(frame, SmaCross, cash=CASH, fee_rate=FEE, mode=m) for m in modes}
    backtests["compiled"].run(fast=10, slow=30)  # loads (or compiles) the kernels, not timed

    times: dict[str, list[float]] = {m: [] for m in (*modes, "plain")}
    results = {}
    fills: list[tuple[int, float, float]] = []
    cash = 0.0
    for _ in range(args.repeat):
        for mode, backtest in backtests.items():
            start = time.perf_counter()
            results[mode] = backtest.run(fast=10, slow=30)
            times[mode].append(time.perf_counter() - start)

        start = time.perf_counter()
        close = frame["close"].to_numpy()
        signal = sma_cross_signals(close, 10, 30).tolist()
        fills, cash = plain_loop(frame["open"].to_list(), signal, FEE, CASH)
        times["plain"].append(time.perf_counter() - start)

    dense = results["dense"]
    engine_fills = dense.fills
    same = (
        engine_fills.height == len(fills)
        and np.array_equal(engine_fills["price"].to_numpy(), np.array([f[1] for f in fills]))
        and np.array_equal(engine_fills["quantity"].to_numpy(), np.array([f[2] for f in fills]))
        and dense.equity["cash"][-1] == cash
        and results["signal"].digest == dense.digest
        and results["compiled"].digest == dense.digest
    )
    seconds = {name: statistics.median(values) for name, values in times.items()}
    n = args.bars
    print(
        f"series: {n:,} synthetic 1-minute bars, SmaCross(10, 30), fee {FEE:.2%}, "
        f"{args.repeat} runs (median)"
    )
    print(
        f"fills: engine {engine_fills.height:,}, plain loop {len(fills):,}; identical fills, and "
        f"identical digests in all modes: {same}"
    )
    print(f"{'':<34}{'seconds':>10}{'bars/s':>14}{'plain loop / it':>18}")
    labels = {
        "dense": "engine, dense (every bar)",
        "signal": "engine, signal mode",
        "compiled": "engine, compiled order path",
        "plain": "plain Python loop",
    }
    for name, label in labels.items():
        s = seconds[name]
        print(f"{label:<34}{s:>10.3f}{n / s:>14,.0f}{seconds['plain'] / s:>18.3f}")
    if not same:
        raise SystemExit("engine and plain loop disagree: the benchmark compares different work")


if __name__ == "__main__":
    main()
