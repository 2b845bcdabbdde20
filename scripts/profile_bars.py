"""What a dense run costs per bar when the strategy does nothing: the engine's floor for a Python
`on_bar` strategy (bus delivery, Bar construction, context updates, the clock, the venue's
paused subscription), with the Python calls per bar and the top functions of its cProfile.

    PYTHONPATH=. python scripts/profile_bars.py [--bars 525600] [--top 30] [--runs 3]

The CPU time is the median of `--runs` warm runs without the profiler (one run before them fills
the caches), whole run and per bar; `--top 0` prints only it and the call counts, for
interleaving two checkouts:
`for i in 1 2 3; do (cd A && PYTHONPATH=. python scripts/profile_bars.py --top 0); (cd B && ...); done`.
`--reads` makes on_bar read the bar's close and the context's index, as most strategies do.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bars", type=int, default=525_600)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--reads", action="store_true", help="on_bar reads bar.close and ctx.index()"
    )
    args = parser.parse_args()
    from synthetic import synthetic_bars

    from backtester import Backtest, Strategy

    class Idle(Strategy[Any]):
        def on_bar(self, bar: Any) -> None:
            pass

    class Reads(Strategy[Any]):
        def on_bar(self, bar: Any) -> None:
            bar.close  # noqa: B018
            self.ctx.index()

    strategy = Reads if args.reads else Idle
    bt = Backtest(synthetic_bars(args.bars), strategy, cash=100_000.0, mode="dense")
    bt.run()  # warm
    cpus = []
    for _ in range(args.runs):
        started = time.process_time()
        bt.run()
        cpus.append(time.process_time() - started)
    cpu = statistics.median(cpus)
    profile = cProfile.Profile()
    profile.enable()
    bt.run()
    profile.disable()
    stats = pstats.Stats(profile)
    calls = sum(entry[1] for entry in stats.stats.values())  # type: ignore[attr-defined]
    print(
        f"{strategy.__name__}, dense, {args.bars} bars: cpu {cpu:.3f} s unprofiled (median of "
        f"{args.runs}; {cpu / args.bars * 1e9:.0f} ns per bar, whole run); python calls {calls}, "
        f"per bar {calls / args.bars:.2f}"
    )
    if args.top:
        stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
