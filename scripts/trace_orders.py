"""Executed Python lines and calls per order of one warm run of SmaCross on synthetic 1m bars,
by file of the package (a line trace: counts, not time; the load does not move them).

    PYTHONPATH=. python scripts/trace_orders.py [--bars 50000] [--mode signal] [--lines FILE,...]

`--lines execution/venue.py,core/bus.py` also lists those files' lines run at least half a time
per order, with their counts per order. A multi-line statement counts once per line it spans.
"""

from __future__ import annotations

import argparse
import linecache
import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

PACKAGE = "backtester/"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bars", type=int, default=50_000)
    parser.add_argument("--mode", default="signal", choices=["dense", "signal"])
    parser.add_argument("--lines", default="")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    from synthetic import synthetic_bars

    from backtester import Backtest
    from backtester.strategies import SmaCross

    bt = Backtest(
        synthetic_bars(args.bars), SmaCross, cash=100_000.0, fee_rate=0.0001, mode=args.mode
    )
    orders = len(bt.run(fast=10, slow=30).orders)  # warm
    lines: Counter[tuple[str, int]] = Counter()
    calls: Counter[str] = Counter()

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            lines[(frame.f_code.co_filename, frame.f_lineno)] += 1
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        name = frame.f_code.co_filename
        if PACKAGE not in name:
            return None
        calls[f"{name.rsplit(PACKAGE, 1)[-1]}:{frame.f_code.co_name}"] += 1
        return local

    sys.settrace(tracer)
    bt.run(fast=10, slow=30)
    sys.settrace(None)
    per_file: Counter[str] = Counter()
    for (name, _), count in lines.items():
        per_file[name.rsplit(PACKAGE, 1)[-1]] += count
    total = sum(per_file.values())
    print(
        f"mode {args.mode}, {args.bars} bars, {orders} orders: {total / orders:.1f} lines and "
        f"{sum(calls.values()) / orders:.1f} Python calls per order"
    )
    for name, count in per_file.most_common(args.top):
        print(f"{count / orders:8.1f}  {name}")
    for wanted in filter(None, args.lines.split(",")):
        print(f"--- {wanted}")
        for (name, number), count in sorted(lines.items()):
            if name.endswith(wanted) and count >= orders / 2:
                print(
                    f"{count / orders:6.2f} {number:5d} {linecache.getline(name, number).rstrip()}"
                )


if __name__ == "__main__":
    main()
