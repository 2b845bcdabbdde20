"""Indicator throughput: input values per second on one core for SMA, EMA, RSI and ATR (and the
rest of the library), on a year of synthetic 1-minute bars, next to TA-Lib in the same run.

    python scripts/bench_indicators.py [--bars 525600] [--repeat 7]

Each function is called once to compile (numba) or load its kernel from the cache, then timed as
the median of `--repeat` warm calls. "values/s" counts input rows per second (an ATR reads three
columns per row and counts one). The kernels are single-threaded, so the figure is per core.
TA-Lib's column is shown when the `ta-lib` package is installed (`pip install -e .[dev]`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import synthetic_bars

from backtester import indicators as ta

TARGET = 10_000_000  # values per second per core, for the four headline indicators
HEADLINE = ("sma", "ema", "rsi", "atr")


def timed(function: Callable[[], Any], repeat: int) -> float:
    function()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=525_600)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    frame = synthetic_bars(args.bars)
    o, h, low, c, v = (frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    ts = frame["timestamp_ms"].to_numpy() * 1_000_000
    try:
        import talib
    except ImportError:
        talib = None

    cases: dict[str, tuple[Callable[[], Any], Callable[[], Any] | None]] = {
        "sma": (lambda: ta.sma(c, 20), talib and (lambda: talib.SMA(c, 20))),
        "ema": (lambda: ta.ema(c, 20), talib and (lambda: talib.EMA(c, 20))),
        "rsi": (lambda: ta.rsi(c, 14), talib and (lambda: talib.RSI(c, 14))),
        "atr": (lambda: ta.atr(h, low, c, 14), talib and (lambda: talib.ATR(h, low, c, 14))),
        "wma": (lambda: ta.wma(c, 20), talib and (lambda: talib.WMA(c, 20))),
        "kama": (lambda: ta.kama(c, 30), talib and (lambda: talib.KAMA(c, 30))),
        "macd": (lambda: ta.macd(c), talib and (lambda: talib.MACD(c))),
        "bbands": (lambda: ta.bbands(c), talib and (lambda: talib.BBANDS(c))),
        "adx": (lambda: ta.adx(h, low, c), talib and (lambda: talib.ADX(h, low, c))),
        "stoch": (lambda: ta.stoch(h, low, c), talib and (lambda: talib.STOCH(h, low, c))),
        "cci": (lambda: ta.cci(h, low, c), talib and (lambda: talib.CCI(h, low, c))),
        "mfi": (lambda: ta.mfi(h, low, c, v), talib and (lambda: talib.MFI(h, low, c, v))),
        "supertrend": (lambda: ta.supertrend(h, low, c), None),
        "vwap": (lambda: ta.vwap(h, low, c, v, ts), None),
        "zscore": (lambda: ta.zscore(c, 20), None),
    }
    print(f"{args.bars:,} bars, median of {args.repeat} warm calls, one thread")
    print(f"{'indicator':<11} {'ms':>8} {'values/s':>14} {'TA-Lib ms':>10} {'ratio':>6}")
    short = []
    for name, (ours, theirs) in cases.items():
        seconds = timed(ours, args.repeat)
        rate = args.bars / seconds
        reference = timed(theirs, args.repeat) if theirs is not None else float("nan")
        ratio = seconds / reference if theirs is not None else float("nan")
        print(
            f"{name:<11} {seconds * 1e3:>8.2f} {rate:>14,.0f} {reference * 1e3:>10.2f} "
            f"{ratio:>6.2f}"
        )
        if name in HEADLINE and rate < TARGET:
            short.append(name)
    del o
    if short:
        print(f"below {TARGET:,} values/s: {', '.join(short)}")
        return 1
    print(f"sma, ema, rsi, atr: all above {TARGET:,} values/s per core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
