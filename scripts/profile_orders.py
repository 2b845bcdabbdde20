"""Where a dense or signal-mode run's time goes per order: cProfile of one warm run of SmaCross on
synthetic 1m bars, with the Python calls and the time per order, and the top functions.

    PYTHONPATH=. python scripts/profile_orders.py [--bars 525600] [--mode dense] [--top 30]

The CPU time is the median of `--runs` warm runs without the profiler (one run before them fills
the caches); `--top 0` prints only it and the call counts, for interleaving two checkouts:
`for i in 1 2 3; do (cd A && PYTHONPATH=. python scripts/profile_orders.py --top 0); (cd B && ...); done`.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bars", type=int, default=525_600)
    parser.add_argument("--mode", default="dense", choices=["dense", "signal"])
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from synthetic import synthetic_bars

    from backtester import Backtest
    from backtester.strategies import SmaCross

    bt = Backtest(
        synthetic_bars(args.bars), SmaCross, cash=100_000.0, fee_rate=0.0001, mode=args.mode
    )
    bt.run(fast=10, slow=30)  # warm
    cpus = []
    for _ in range(args.runs):
        started = time.process_time()
        result = bt.run(fast=10, slow=30)
        cpus.append(time.process_time() - started)
    cpu = statistics.median(cpus)
    orders = len(result.orders)
    profile = cProfile.Profile()
    profile.enable()
    bt.run(fast=10, slow=30)
    profile.disable()
    stats = pstats.Stats(profile)
    calls = sum(entry[1] for entry in stats.stats.values())  # type: ignore[attr-defined]
    print(
        f"mode {args.mode}, {args.bars} bars, {orders} orders, cpu {cpu:.3f} s unprofiled "
        f"({cpu / max(orders, 1) * 1e6:.1f} us per order, whole run)"
    )
    print(
        f"python calls {calls}, per bar {calls / args.bars:.2f}, per order {calls / max(orders, 1):.1f}"
    )
    if args.top:
        stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
