"""The compiled order path against the hardware: the whole run, its stages, and the simulation kernel
alone, next to a plain numba loop over the same signals, all measured in one process:

    python scripts/bench_compiled.py [--bars 525600] [--calls 9]

- **plain numba loop**: SmaCross's trades written by hand as one `numba.njit` loop over the open
  prices and the precomputed crossover signal (all-in buys with the fee reserved, full exits at the
  next bar's open), writing each fill's row, price, quantity and fee: the least a backtest of
  these signals computes. The script checks it gives our fills bit for bit.
- **whole run**: `Backtest.run` on the compiled path (indicators, signals, simulation, trades,
  statistics, digest: what a user and a sweep point pay).
- **whole run, then every frame read**: the same, with the frames a run builds only when they are
  first read (fills, orders, trades, the equity curve) read once.
- **its stages**, each timed alone on the same inputs: the signals (`sma_cross_signals`), the
  simulation kernel (`signal_path.simulate`, allocation of its outputs included), the pass that
  marks to market (the equity, with the statistics' drawdown profile and exposure; the equity
  frame's other columns are written when it is first read), the
  round trips as far as the statistics take them (the trades frame, with its MAE/MFE, is built
  when first read), the statistics and the digest; "the rest" is the whole run less
  those (frames, checks).

- **a perpetual**: the same signals as a stop-and-reverse SmaCross (`short=True`) on a linear
  perpetual at 3x, isolated margin, funding every 8 hours and a mark a hair off the last price:
  the whole compiled run next to the same run in signal mode (the event path's fastest mode),
  with their digests compared.

- **five years** (`--five-year N`): SmaCross on 2,628,000 bars read from a Parquet file, in N fresh
  processes one after another: the peak RSS of each whole process (data included) once the bars
  are loaded and after one compiled run, and the run's own CPU time.

Every figure is the median of `--calls` warm calls (after an untimed first one), in wall seconds
and in CPU seconds of this process: the machine may be shared, and CPU time is what the load
disturbs least. Bars per second per core are bars over CPU seconds (everything here runs on one
thread).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from synthetic import synthetic_bars  # noqa: E402

from backtester import Backtest, Instrument  # noqa: E402
from backtester.compiled import signal_path  # noqa: E402
from backtester.compiled.drawdown import mark_to_market  # noqa: E402
from backtester.compiled.jit import active_backend  # noqa: E402
from backtester.metrics.stats import compute_stats  # noqa: E402
from backtester.metrics.trades import fill_columns, round_trip_record  # noqa: E402
from backtester.results import columns_digest  # noqa: E402
from backtester.strategies import SmaCross  # noqa: E402
from backtester.strategy.library.sma_cross import sma_cross_signals  # noqa: E402

CASH = 100_000.0
FEE = 0.0001
FAST, SLOW = 10, 30


@numba.njit(cache=False, nogil=True)
def plain_loop(
    open_: np.ndarray,
    signal: np.ndarray,
    fee: float,
    cash: float,
    rows: np.ndarray,
    prices: np.ndarray,
    quantities: np.ndarray,
    fees: np.ndarray,
) -> tuple[int, float]:
    """SmaCross by hand: act at the next bar's open on each crossover."""
    position = 0.0
    pending = 0
    fills = 0
    for i in range(len(open_)):
        if pending != 0:
            price = open_[i]
            if pending > 0:
                quantity = cash / (price * (1.0 + fee))
                # Spot cash may not go negative: drop the ulp the division can overshoot by.
                while quantity * price + quantity * price * fee > cash:
                    quantity = np.nextafter(quantity, 0.0)
                notional = quantity * price
                paid = notional * fee
                cash = cash - (notional + paid)
                position = quantity
            else:
                quantity = position
                notional = quantity * price
                paid = notional * fee
                cash = cash + (notional - paid)
                position = 0.0
            rows[fills] = i
            prices[fills] = price
            quantities[fills] = quantity
            fees[fills] = paid
            fills += 1
            pending = 0
        s = signal[i]
        if s > 0 and position == 0.0:
            pending = 1
        elif s < 0 and position > 0.0:
            pending = -1
    return fills, cash


def timed(call: Callable[[], Any], calls: int) -> tuple[float, float, Any]:
    """(median wall seconds, median CPU seconds, last result) of `calls` calls after a first one."""
    result = call()
    walls, cpus = [], []
    for _ in range(calls):
        wall, cpu = time.perf_counter(), time.process_time()
        result = call()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls), statistics.median(cpus), result


def machine() -> str:
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"{model}, {os.cpu_count()} cores, load average {load}; Python {platform.python_version()}, "
        f"numba {numba.__version__}, numpy {np.__version__}, kernels: {active_backend()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bars", type=int, default=525_600)
    parser.add_argument("--calls", type=int, default=9, help="warm calls after the first")
    parser.add_argument(
        "--five-year",
        type=int,
        metavar="N",
        help="only the five-year run's peak memory, in N fresh processes",
    )
    args = parser.parse_args()
    if args.five_year:
        five_years(args.five_year)
        return
    n, calls = args.bars, args.calls

    frame = synthetic_bars(n)
    open_ = frame["open"].to_numpy()
    close = frame["close"].to_numpy()
    backtest = Backtest(frame, SmaCross, cash=CASH, fee_rate=FEE, mode="compiled")

    rows: dict[str, tuple[float, float]] = {}
    wall, cpu, result = timed(lambda: backtest.run(fast=FAST, slow=SLOW), calls)
    rows["whole run (Backtest.run, compiled path)"] = (wall, cpu)

    def read_all() -> Any:
        # The frames a run leaves to be built when first read (orders, trades), read.
        run = backtest.run(fast=FAST, slow=SLOW)
        return run.fills, run.orders, run.trades, run.equity

    wall, cpu, _ = timed(read_all, calls)
    read = (wall, cpu)

    signal = sma_cross_signals(close, FAST, SLOW)
    capacity = int(np.count_nonzero(signal))
    out = (np.empty(capacity, np.int64), *(np.empty(capacity) for _ in range(3)))
    wall, cpu, (fills, cash) = timed(lambda: plain_loop(open_, signal, FEE, CASH, *out), calls)
    plain = (wall, cpu)

    stage_rows: dict[str, tuple[float, float]] = {}
    wall, cpu, _ = timed(lambda: sma_cross_signals(close, FAST, SLOW), calls)
    stage_rows["signals (SMA cross on the tick grid)"] = (wall, cpu)
    nan = math.nan
    high, low = frame["high"].to_numpy(), frame["low"].to_numpy()
    wall, cpu, simulated = timed(
        lambda: signal_path.simulate(
            signal, open_, close, high, low, 1.0, 1.0, CASH, FEE, 0.0, nan, nan, False
        ),
        calls,
    )
    kernel = (wall, cpu)
    stage_rows["simulation kernel (signal_path.simulate)"] = kernel
    ts = result.equity["ts"].dt.epoch("ns").to_numpy()
    values = np.empty(n)
    none = np.zeros(0)

    def marking() -> tuple[float, int, int]:
        # As the run does it: the equity alone.
        return mark_to_market(
            ts, simulated.cash, simulated.position, close, none, values, none, none
        )

    wall, cpu, (deepest, longest, exposed) = timed(marking, calls)
    stage_rows["mark to market (equity curve, drawdown profile, exposure)"] = (wall, cpu)
    last_mark = {"BTC/USDT": (int(ts[-1]), float(close[-1]))}
    ranges = {"BTC/USDT": (ts, high, low)}
    wall, cpu, record = timed(
        lambda: round_trip_record(result.fills, last_mark, None, None, ranges, simulated.fill_row),
        calls,
    )
    stage_rows["round trips (what the statistics take; the frame waits to be read)"] = (wall, cpu)
    wall, cpu, _ = timed(
        lambda: compute_stats(
            None,
            record.summary,
            initial_cash=CASH,
            fees_paid=float(result.stats["fees_paid"]),
            first_close=float(close[0]),
            last_close=float(close[-1]),
            exposure=exposed,
            drawdown=(deepest, longest),
            timeline=ts,
            values=values,
        ),
        calls,
    )
    stage_rows["statistics"] = (wall, cpu)
    # As the run does it: from the fills' columns and the equity values.
    taken = fill_columns(result.fills)
    wall, cpu, digest = timed(lambda: columns_digest(taken, ts, values), calls)
    stage_rows["digest (XXH3-128 of fills and equity curve)"] = (wall, cpu)
    whole = rows["whole run (Backtest.run, compiled path)"]
    stage_rows["the rest (frames, checks)"] = (
        whole[0] - sum(w for w, _ in stage_rows.values()),
        whole[1] - sum(c for _, c in stage_rows.values()),
    )

    same = (
        digest == result.digest
        and fills == result.fills.height
        and np.array_equal(out[1][:fills], result.fills["price"].to_numpy())
        and np.array_equal(out[2][:fills], result.fills["quantity"].to_numpy())
        and np.array_equal(out[3][:fills], result.fills["fee"].to_numpy())
        and np.array_equal(simulated.fill_price, result.fills["price"].to_numpy())
        and float(result.equity["cash"][-1]) == cash
    )
    print(machine())
    print(
        f"{n:,} synthetic 1-minute bars, SmaCross({FAST}, {SLOW}), fee {FEE:.2%}, {fills:,} fills; "
        f"median of {calls} warm calls; the plain loop gives our fills bit for bit: {same}"
    )
    print()
    print("| | wall ms | CPU ms | ÷ plain loop, wall (CPU) | bars/s per core (CPU) |")
    print("|---|---:|---:|---:|---:|")

    def line(label: str, wall: float, cpu: float) -> None:
        ratio = f"{wall / plain[0]:.1f}x ({cpu / plain[1]:.1f}x)"
        rate = f"{n / cpu:,.0f}" if cpu > 0 else "-"
        print(f"| {label} | {wall * 1e3:.2f} | {cpu * 1e3:.2f} | {ratio} | {rate} |")

    line("plain numba loop over the same signals", *plain)
    for label, (wall, cpu) in rows.items():
        line(f"**{label}**", wall, cpu)
    line("whole run, then every frame of the result read", *read)
    for label, (wall, cpu) in stage_rows.items():
        line(f"  {label}", wall, cpu)
    print()
    print(
        f"whole run ÷ plain loop: {whole[0] / plain[0]:.1f}x wall, {whole[1] / plain[1]:.1f}x CPU "
        f"(target 4x); simulation kernel {n / kernel[1] / 1e6:.1f}M bars/s per core "
        f"(wall {n / kernel[0] / 1e6:.1f}M; target 50M)"
    )
    perpetual = perpetual_runs(frame, max(3, calls // 3))
    print()
    print("| perpetual, stop and reverse, funding, mark | wall ms | CPU ms | fills | fundings |")
    print("|---|---:|---:|---:|---:|")
    for label, (wall, cpu, run) in perpetual.items():
        print(
            f"| {label} | {wall * 1e3:.1f} | {cpu * 1e3:.1f} | {run.stats['fills']:,} "
            f"| {run.funding.height:,} |"
        )
    (event_wall, event_cpu, event_run), (fast_wall, fast_cpu, fast_run) = perpetual.values()
    print(
        f"compiled ÷ signal mode on the perpetual: {event_wall / fast_wall:.0f}x faster wall, "
        f"{event_cpu / fast_cpu:.0f}x CPU; same digest: {fast_run.digest == event_run.digest}"
    )
    if not same or fast_run.digest != event_run.digest:
        raise SystemExit("the runs disagree: the benchmark compares different work")


FIVE_YEARS = 5 * 525_600


# One fresh process that imports only what a user's script would (not numba, which this script
# imports for its plain loop): the bars read from the Parquet file, one compiled run.
FIVE_YEAR_CHILD = """
import json, resource, sys, time
from backtester import Backtest
from backtester.strategies import SmaCross

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

path, cash, fee, fast, slow = sys.argv[1], *map(float, sys.argv[2:4]), *map(int, sys.argv[4:6])
backtest = Backtest(path, SmaCross, cash=cash, fee_rate=fee, mode="compiled")
loaded = peak_mb()
cpu = time.process_time()
result = backtest.run(fast=fast, slow=slow)
cpu = time.process_time() - cpu
print(json.dumps({"loaded": loaded, "peak": peak_mb(), "cpu": cpu, "fills": result.stats["fills"]}))
"""


def five_years(processes: int) -> None:
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "five_years.parquet"
        synthetic_bars(FIVE_YEARS).write_parquet(path)
        print(f"{FIVE_YEARS:,} bars from a Parquet file, SmaCross({FAST}, {SLOW}), compiled path")
        print()
        print("| process | peak RSS, bars loaded (MB) | peak RSS, after the run (MB) | run CPU s |")
        print("|---:|---:|---:|---:|")
        peaks = []
        for k in range(processes):
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    FIVE_YEAR_CHILD,
                    str(path),
                    *map(str, (CASH, FEE, FAST, SLOW)),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            m = json.loads(done.stdout.strip().splitlines()[-1])
            peaks.append(m["peak"])
            print(f"| {k + 1} | {m['loaded']:,.0f} | {m['peak']:,.0f} | {m['cpu']:.2f} |")
    print()
    print(
        f"peak RSS over {processes} processes: median {statistics.median(peaks):,.0f} MB, "
        f"highest {max(peaks):,.0f} MB (target <= 500 MB); load average "
        + " / ".join(f"{x:.2f}" for x in os.getloadavg())
    )


def perpetual_runs(frame: Any, calls: int) -> dict[str, tuple[float, float, Any]]:
    """The perpetual in signal mode and on the compiled path: (wall, CPU, result) of each."""
    hour = 3_600_000
    first, last = int(frame["timestamp_ms"][0]), int(frame["timestamp_ms"][-1])
    times = np.arange(first - first % (8 * hour), last + 1, 8 * hour) + 17
    rng = np.random.Generator(np.random.PCG64(3))
    rates = rng.normal(1e-4, 2e-4, len(times))
    knobs = {
        "cash": CASH,
        "fee_rate": FEE,
        "instrument": Instrument("BTC/USDT:USDT", leverage=3, margin_mode="isolated"),
        "funding": pl.DataFrame({"timestamp_ms": times, "funding_rate": rates}),
        "mark": frame.with_columns(pl.col("open", "high", "low", "close") * 1.0002),
    }
    runs = {}
    for mode, label in (("signal", "signal mode"), ("compiled", "**compiled path**")):
        backtest = Backtest(frame, SmaCross, mode=mode, **knobs)  # type: ignore[arg-type]
        runs[label] = timed(lambda b=backtest: b.run(fast=FAST, slow=SLOW, short=True), calls)
    return runs


if __name__ == "__main__":
    main()
