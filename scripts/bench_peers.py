"""Our engine against its peers on the same synthetic 1-minute series and the same SMA(10/30)
crossover with all-in buys and full exits at the next bar's open, every framework timed the same way:

    pip install -e .[bench]
    python scripts/bench_peers.py [--sizes 100000 525600] [--rounds 3] [--five-year]

Protocol, identical for every row:
- Each measurement is a fresh process that first times the import of the framework (with what it
  pulls in: pandas for the peers, polars and numpy for us), then builds the data in memory (not
  timed), then times the framework's first call, then >= 5 more calls: "warm" is their median.
- A call is what a user calls per parameter set once the data is loaded: ours `Backtest.run`
  (indicators, signals, simulation, trades, statistics, digest; in dense mode once as SmaCross,
  whose signal hook is called only on bars whose signal is not 0, and once with an `on_bar` of
  its own, called on every bar as backtesting.py calls `next`); backtesting.py `Backtest.run`
  (its progress bar switched off, as without tqdm installed); backtrader a Cerebro built, fed and
  run (it cannot run twice); vectorbt `Portfolio.from_signals` with the final value and the trade
  records, once on pandas Series and once on numpy arrays. The peers get the crossover signal
  precomputed (the same array as ours), so their indicator time is not counted at all.
- The processes of all rows run in turn, `--rounds` times (alternated, so a noisy minute on the
  shared machine spreads over all rows), and each figure is the median over the rounds. Before
  the rounds, one untimed process per framework fills the on-disk compile caches (numba's for
  vectorbt, our kernels' ahead-of-time build), as any installation has after its first use.
- Agreement: every row must give the dense loop's round trips (entry and exit bar); final equity
  is compared with a stated tolerance, since the frameworks round all-in quantities differently
  (backtesting.py to 1e-8 BTC).

Conventions: a 0.1% fee on the 100k series; 0.01% on the year-long one (at 0.1% the strategy loses
nearly all its cash and every framework then stops at its own minimum order size). backtrader takes
minutes per call on a year, so it runs only on sizes up to `--backtrader-max-bars` (one round).

`--five-year` also runs SmaCross on 2,628,000 bars (five years of minutes, read from a Parquet file)
on the compiled path in a fresh process: first and second run, and the peak RSS of the whole
process, data included.

Bytecode caches are allowed in every child (PYTHONDONTWRITEBYTECODE is dropped from their
environment), as in any installation.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

CASH = 100_000.0
FAST, SLOW = 10, 30
FIVE_YEARS = 5 * 525_600
ROWS = (
    "backtester dense",
    "backtester dense, on_bar every bar",
    "backtester signal mode",
    "backtester compiled path",
    "backtesting.py",
    "backtrader",
    "vectorbt, pandas input",
    "vectorbt, numpy input",
)
FRAMEWORK_OF = {
    "backtester dense": "backtester",
    "backtester dense, on_bar every bar": "backtester",
    "backtester signal mode": "backtester",
    "backtester compiled path": "backtester",
    "backtesting.py": "backtesting",
    "backtrader": "backtrader",
    "vectorbt, pandas input": "vectorbt",
    "vectorbt, numpy input": "vectorbt",
}
Trips = list[tuple[int, int]]


# --- one framework in one fresh process -----------------------------------------------------------


def import_framework(framework: str) -> None:
    """The imports a user of the framework pays before the first call."""
    if framework == "backtester":
        import backtester  # noqa: F401
    elif framework == "backtesting":
        import backtesting
        import backtesting.lib  # noqa: F401
    elif framework == "backtrader":
        import backtrader  # noqa: F401
        import pandas  # noqa: F401  (its data feed)
    elif framework == "vectorbt":
        import vectorbt  # noqa: F401


def prepare(row: str, n: int, fee: float) -> tuple[Callable[[], Any], Callable[[Any], tuple]]:
    """(the call timed, what gives its round trips and final equity from the call's result)."""
    from synthetic import synthetic_bars

    from backtester.strategy.library.sma_cross import sma_cross_signals

    frame = synthetic_bars(n)
    signal = sma_cross_signals(frame["close"].to_numpy(), FAST, SLOW)
    if FRAMEWORK_OF[row] == "backtester":
        return ours(row, frame, fee)
    data = pandas_frame(frame)
    if row == "backtesting.py":
        return backtesting_py(data, signal, fee)
    if row == "backtrader":
        return backtrader_run(data, signal.tolist(), fee)
    return vectorbt_run(data, signal, fee, numpy_input=row.endswith("numpy input"))


def ours(row: str, frame: Any, fee: float) -> tuple[Callable[[], Any], Callable[[Any], tuple]]:
    import polars as pl

    from backtester import Backtest
    from backtester.strategies import SmaCross

    mode = {"dense": "dense", "signal": "signal", "compiled": "compiled"}[
        row.split()[1].rstrip(",")
    ]
    strategy: Any = SmaCross
    if row.endswith("on_bar every bar"):
        # A hook of its own is called on every bar, as backtesting.py calls `next`; SmaCross's
        # inherited hook is called only on the bars whose signal is not 0 (StrategyModule).
        class SmaCrossEveryBar(SmaCross):  # type: ignore[misc]
            def on_bar(self, bar: Any) -> None:
                super().on_bar(bar)

        strategy = SmaCrossEveryBar
    bt = Backtest(frame, strategy, cash=CASH, fee_rate=fee, mode=mode)
    t0 = int(bt.data["BTC/USDT"]["ts"][0])

    def summary(result: Any) -> tuple[Trips, float]:
        closed = result.trades.filter(~pl.col("is_open"))
        entry = (closed["entry_time"].dt.epoch("ns").to_numpy() - t0) // 60_000_000_000
        exit_ = (closed["exit_time"].dt.epoch("ns").to_numpy() - t0) // 60_000_000_000
        trips = list(zip(entry.tolist(), exit_.tolist(), strict=True))
        return trips, float(result.stats["final_equity"])

    return (lambda: bt.run(fast=FAST, slow=SLOW)), summary


def pandas_frame(frame: Any) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            "Open": frame["open"].to_numpy(),
            "High": frame["high"].to_numpy(),
            "Low": frame["low"].to_numpy(),
            "Close": frame["close"].to_numpy(),
            "Volume": frame["volume"].to_numpy(),
        },
        index=pd.to_datetime(frame["timestamp_ms"].to_numpy(), unit="ms"),
    )


def backtesting_py(
    data: Any, signal: Any, fee: float
) -> tuple[Callable[[], Any], Callable[[Any], tuple]]:
    import backtesting.backtesting
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    # The pass-through backtesting.py itself uses when tqdm is not installed: no progress bar.
    backtesting.backtesting._tqdm = lambda seq, **_: seq  # type: ignore[attr-defined]

    class Cross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.signal = self.I(lambda: signal, name="signal", plot=False)

        def next(self) -> None:
            s = self.signal[-1]
            if s > 0 and not self.position:
                self.buy()
            elif s < 0 and self.position:
                self.position.close()

    bt = FractionalBacktest(
        data, Cross, cash=CASH, commission=fee, fractional_unit=1e-8, finalize_trades=False
    )

    def summary(stats: Any) -> tuple[Trips, float]:
        trades = stats["_trades"]
        trips = list(zip(trades["EntryBar"].tolist(), trades["ExitBar"].tolist(), strict=True))
        return trips, float(stats["Equity Final [$]"])

    return bt.run, summary


def backtrader_run(
    data: Any, signal: list[int], fee: float
) -> tuple[Callable[[], Any], Callable[[Any], tuple]]:
    import backtrader as bt

    def call() -> tuple[Trips, float]:
        trips: Trips = []

        class Cross(bt.Strategy):  # type: ignore[misc]
            def next(self) -> None:
                i = len(self) - 1
                s = signal[i]
                if s > 0 and not self.position:
                    # All cash at the next open: backtrader sizes at submission, so the benchmark
                    # hands its sizer the next bar's open (known here only because it is data).
                    nxt = self.data.open[1] if i + 1 < len(signal) else self.data.close[0]
                    self.buy(size=self.broker.getcash() / (nxt * (1 + fee)) * (1 - 1e-12))
                elif s < 0 and self.position:
                    self.close()

            def notify_trade(self, trade: Any) -> None:
                if trade.isclosed:
                    trips.append((trade.baropen - 1, trade.barclose - 1))

        cerebro = bt.Cerebro(stdstats=False)
        cerebro.adddata(bt.feeds.PandasData(dataname=data))
        cerebro.addstrategy(Cross)
        cerebro.broker.setcash(CASH)
        cerebro.broker.setcommission(commission=fee)
        cerebro.run(preload=True, runonce=False)
        return trips, float(cerebro.broker.getvalue())

    return call, lambda result: result


def vectorbt_run(
    data: Any, signal: Any, fee: float, *, numpy_input: bool
) -> tuple[Callable[[], Any], Callable[[Any], tuple]]:
    import numpy as np
    import vectorbt as vbt

    # Act at the next bar's open on the bar after each crossover.
    entries = np.concatenate(([False], signal[:-1] > 0))
    exits = np.concatenate(([False], signal[:-1] < 0))
    close, open_ = data["Close"], data["Open"]
    if numpy_input:
        close, open_ = close.to_numpy(), open_.to_numpy()
    else:
        import pandas as pd

        entries = pd.Series(entries, index=data.index)
        exits = pd.Series(exits, index=data.index)

    def call() -> tuple[Any, float]:
        pf = vbt.Portfolio.from_signals(
            close, entries, exits, price=open_, fees=fee, init_cash=CASH, size=np.inf
        )
        return pf.trades.records, float(pf.final_value())

    def summary(result: tuple[Any, float]) -> tuple[Trips, float]:
        records, final = result
        closed = records[records["status"] == 1]
        trips = list(zip(closed["entry_idx"].tolist(), closed["exit_idx"].tolist(), strict=True))
        return trips, final

    return call, summary


def child(row: str, n: int, fee: float, calls: int) -> None:
    started, cpu = time.perf_counter(), time.process_time()
    import_framework(FRAMEWORK_OF[row])
    import_seconds = time.perf_counter() - started
    import_cpu = time.process_time() - cpu
    call, summary = prepare(row, n, fee)
    seconds, cpu_seconds = [], []
    result = None
    for _ in range(1 + calls):
        gc.collect()
        started, cpu = time.perf_counter(), time.process_time()
        result = call()
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu)
    trips, final = summary(result)
    print(
        json.dumps(
            {
                "import": import_seconds,
                "import_cpu": import_cpu,
                "first": seconds[0],
                "warm": statistics.median(seconds[1:]),
                "first_cpu": cpu_seconds[0],
                "warm_cpu": statistics.median(cpu_seconds[1:]),
                "calls": seconds,
                "trips": trips,
                "final_equity": final,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def child_env() -> dict[str, str]:
    """Bytecode caches allowed, as in any installation."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def measure(row: str, n: int, fee: float, calls: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", row, str(n), str(fee), str(calls)],
        capture_output=True,
        text=True,
        env=child_env(),
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{row} on {n:,} bars failed:\n{done.stderr}")
    measured: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return measured


def reference_import() -> float:
    """`import polars, numpy` in a fresh process: the floor under our import."""
    code = (
        "import time; t = time.perf_counter(); import polars, numpy; print(time.perf_counter() - t)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), check=True
    )
    return float(done.stdout)


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    imports: list[float]
    first: list[float]
    warm: list[float]
    imports_cpu: list[float]
    first_cpu: list[float]
    warm_cpu: list[float]
    trips: Trips
    final_equity: float
    peak_rss_mb: float

    def median(self, attr: str) -> float:
        return statistics.median(getattr(self, attr))


def agreement(reference: Row, other: Row) -> str:
    same = sum(1 for a, b in zip(reference.trips, other.trips, strict=False) if a == b)
    n = max(len(reference.trips), len(other.trips))
    gap = abs(other.final_equity / reference.final_equity - 1.0)
    return f"{same:,}/{n:,} round trips equal, final equity {gap:.1e} rel."


def run_size(n: int, rows: list[str], rounds: int, calls: int) -> dict[str, Row]:
    fee = 0.001 if n <= 100_000 else 0.0001
    print(f"\n### {n:,} bars, fee {fee:.2%}\n", flush=True)
    results: dict[str, Row] = {}
    floor: list[float] = []
    for round_ in range(rounds):
        floor.append(reference_import())
        for row in rows:
            if row == "backtrader" and round_ > 0:
                continue
            m = measure(row, n, fee, calls)
            if row not in results:
                results[row] = Row(row, [], [], [], [], [], [], m["trips"], m["final_equity"], 0.0)
            r = results[row]
            for attr, key in (
                ("imports", "import"),
                ("first", "first"),
                ("warm", "warm"),
                ("imports_cpu", "import_cpu"),
                ("first_cpu", "first_cpu"),
                ("warm_cpu", "warm_cpu"),
            ):
                getattr(r, attr).append(m[key])
            r.peak_rss_mb = max(r.peak_rss_mb, m["peak_rss_mb"])
            print(
                f"  round {round_ + 1}: {row}: import {m['import']:.3f} s, first {m['first']:.3f} s,"
                f" warm {m['warm']:.3f} s",
                file=sys.stderr,
                flush=True,
            )
    dense = results["backtester dense"]
    compiled = results.get("backtester compiled path")
    print(
        "| framework | import s (CPU) | first call s (CPU) | warm s (CPU) | first ÷ warm (CPU) "
        "| warm bars/s | ÷ dense, warm (CPU) | peak RSS MB | agreement with dense |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results.values():
        warm, first, cpu, cpu_first = (
            r.median(a) for a in ("warm", "first", "warm_cpu", "first_cpu")
        )
        print(
            f"| {r.name} | {r.median('imports'):.3f} ({r.median('imports_cpu'):.3f}) | "
            f"{first:.3f} ({cpu_first:.3f}) | {warm:.3f} ({cpu:.3f}) | "
            f"{first / warm:.2f}x ({cpu_first / cpu:.2f}x) | {n / warm:,.0f} | "
            f"{warm / dense.median('warm'):.2f}x ({cpu / dense.median('warm_cpu'):.2f}x) | "
            f"{r.peak_rss_mb:,.0f} | {'reference' if r is dense else agreement(dense, r)} |"
        )
    print(
        f"\n`import polars, numpy` alone: {statistics.median(floor):.3f} s (median of {rounds}). "
        f"Medians over {rounds} rounds of {calls} warm calls each (backtrader: one round); "
        "CPU is the process's CPU time (all its threads)."
    )

    def versus(slower: Row, faster: Row, attr: str) -> str:
        return f"{slower.median(attr) / faster.median(attr):.1f}x"

    peer = results.get("backtesting.py")
    if peer is not None:
        for ours_ in (r for r in ROWS if FRAMEWORK_OF[r] == "backtester"):
            if ours_ in results:
                mine = results[ours_]
                print(
                    f"- {ours_} vs backtesting.py, warm: {versus(peer, mine, 'warm')} faster "
                    f"(CPU {versus(peer, mine, 'warm_cpu')}); first call: "
                    f"{versus(peer, mine, 'first')} (CPU {versus(peer, mine, 'first_cpu')})"
                )
    if compiled is not None:
        for vbt_row in ("vectorbt, numpy input", "vectorbt, pandas input"):
            if vbt_row in results:
                vbt = results[vbt_row]
                print(
                    f"- compiled path vs {vbt_row}, warm: {versus(vbt, compiled, 'warm')} faster "
                    f"(CPU {versus(vbt, compiled, 'warm_cpu')}); first call: "
                    f"{versus(vbt, compiled, 'first')} (CPU {versus(vbt, compiled, 'first_cpu')})"
                )
    return results


def five_year_child(path: str) -> None:
    """In a fresh process, so its peak RSS is this run's alone: the bars read from a Parquet file
    as a user or the CLI would, one run, then a second once the first result is released."""
    from backtester import Backtest
    from backtester.strategies import SmaCross

    def peak_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    bt = Backtest(path, SmaCross, cash=CASH, fee_rate=0.0001, mode="compiled")
    loaded = peak_mb()
    started = time.perf_counter()
    result = bt.run(fast=FAST, slow=SLOW)
    first = time.perf_counter() - started
    after_first = peak_mb()
    fills = result.stats["fills"]
    del result
    started = time.perf_counter()
    bt.run(fast=FAST, slow=SLOW)
    second = time.perf_counter() - started
    print(
        f"{FIVE_YEARS:,} bars, {fills:,} fills: first run {first:.3f} s, second run "
        f"{second:.3f} s = {FIVE_YEARS / second:,.0f} bars/s. Peak RSS of the whole process: "
        f"{loaded:,.0f} MB with the data loaded, {after_first:,.0f} MB after the first run "
        f"(target <= 500 MB), {peak_mb():,.0f} MB after the second"
    )


def five_year(tmp: Path) -> None:
    from synthetic import synthetic_bars

    path = tmp / "five_years.parquet"
    synthetic_bars(FIVE_YEARS).write_parquet(path)
    subprocess.run(
        [sys.executable, __file__, "--five-year-child", str(path)], env=child_env(), check=True
    )


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = ", ".join(
        f"{name} {_version(name)}"
        for name in ("backtesting", "backtrader", "vectorbt", "numba", "polars", "numpy", "pandas")
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {versions}; "
        f"load average {load}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 525_600])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5, help="warm calls after the first")
    parser.add_argument("--skip", nargs="*", default=[], choices=sorted(set(FRAMEWORK_OF.values())))
    parser.add_argument("--backtrader-max-bars", type=int, default=100_000)
    parser.add_argument("--five-year", action="store_true", help="also the 2.6M-bar run")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--five-year-child", metavar="PARQUET", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        row, n, fee, calls = args.child
        child(row, int(n), float(fee), int(calls))
        return
    if args.five_year_child:
        five_year_child(args.five_year_child)
        return
    if args.calls < 5:
        parser.error("--calls must be at least 5")

    print(f"Machine: {machine()}")
    rows = [r for r in ROWS if FRAMEWORK_OF[r] not in args.skip]
    # Fill the on-disk compile caches (numba's, our kernels') once, untimed.
    for framework in dict.fromkeys(FRAMEWORK_OF[r] for r in rows):
        row = next(r for r in rows if FRAMEWORK_OF[r] == framework)
        measure(row, 2_000, 0.001, 5)
        if framework == "vectorbt":
            measure("vectorbt, numpy input", 2_000, 0.001, 5)
    for n in args.sizes:
        sized = [r for r in rows if r != "backtrader" or n <= args.backtrader_max_bars]
        run_size(n, sized, args.rounds, args.calls)
    if args.five_year:
        print("\n### five years of 1-minute bars, compiled path, fresh process\n", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            five_year(Path(tmp))
    print(f"\nLoad average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
