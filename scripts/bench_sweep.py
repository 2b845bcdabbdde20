"""Sweep throughput: runs/second with 1 and 2 workers over NATS, and the per-run overhead of the
sweep machinery against calling the engine in a loop in one process.

    python scripts/bench_sweep.py [--fast 5,10,...] [--slow 40,60,...] [--repeats N] [--data PATH]

Workers are started and warmed up (one small sweep) before timing, so start-up is not counted; the
timed span runs from the first job published to the last result received. Connecting, creating the
streams, publishing the data and writing the results table happen once per sweep, outside that
span; inside it, besides the runs and everything between them, are the first job's trip to a
worker and the last result's trip back, a few milliseconds once per sweep (a fraction of a
millisecond per run at the default 96 points). The loop baseline loads the data once, then runs
the same points one after the other; it is timed right before and right after each sweep, because
on a shared machine the load of other processes moves the figures more than the sweep machinery
does. For the same reason the overhead is a median over repeats, printed with its range.

The last line narrows it down: sweep time minus the time the worker spent inside runs (a run's own
timing starts when the worker looks up its data and ends when its outcome is back on the worker's
event loop), so it is what sits between runs: reporting a result, fetching the next job, and the
coordinator's and the server's share of the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from backtester.data.bars import load_bars
from backtester.sweep.config import load_sweep_config
from backtester.sweep.coordinator import SweepSettings, run_sweep
from backtester.sweep.execute import execute
from backtester.sweep.nats_adapter import QueueSettings
from backtester.sweep.plan import SweepPlan, build_plan
from backtester.sweep.results import JOURNAL, read_journal
from tests.sweep_support import (
    GOLDEN,
    Processes,
    nats_servers,
    subprocess_env,
    sweep_config,
    wait_until,
)


def plan_for(
    tmp: Path, data: Path, seed: int, fast: list[int], slow: list[int], out: str = "out"
) -> SweepPlan:
    config = sweep_config(
        tmp / f"sweep-{seed}.toml",
        data,
        strategy="SmaCross",
        grid={"fast": fast, "slow": slow},
        seed=seed,
    )
    cfg = load_sweep_config(config, output_dir=str(tmp / out))
    return build_plan(cfg)


def loop_seconds(plan: SweepPlan) -> float:
    path = plan.runs[0].spec.data[0].path
    warm = {"BTC/USDT": load_bars(path, name=path)}
    execute(plan.runs[0].spec, warm)  # one-time costs (imports, kernels) out of the timing
    started = time.perf_counter()
    bars = {"BTC/USDT": load_bars(path, name=path)}
    for run in plan.runs:
        execute(run.spec, bars)
    return time.perf_counter() - started


def sweep_seconds(url: str, plan: SweepPlan) -> tuple[float, float]:
    """(seconds from the first job to the last result, seconds the workers spent inside runs)."""
    settings = SweepSettings(nats_url=url, workers=0, queue=QueueSettings(ack_wait=30))
    outcome = asyncio.run(run_sweep(plan, settings, stream=io.StringIO()))
    if outcome.manifest.ok != len(plan.runs):
        raise RuntimeError(f"{outcome.manifest.failed} runs failed")
    inside = sum(r.seconds for r in read_journal(plan.output_dir / JOURNAL))
    return outcome.seconds, inside


def with_workers(
    count: int, tmp: Path, data: Path, fast: list[int], slow: list[int], repeats: int
) -> list[tuple[float, float, float]]:
    """Per repeat: (loop seconds, sweep seconds, seconds inside runs). The loop runs in this
    process while the workers idle, right before each sweep, so both see the same machine load."""
    timings = []
    with nats_servers(1) as (url,), Processes(tmp / f"logs-{count}") as procs:
        for i in range(count):
            procs.worker(f"w{i}", url, tmp / "cache", subprocess_env())
        warm_up = plan_for(tmp, data, 1000 + count, fast[:2], slow[-1:], f"out-{count}")
        sweep_seconds(url, warm_up)
        for i in range(count):
            wait_until(lambda i=i: "run.reported" in procs.log(f"w{i}"), 60, f"worker {i} warm")
        for repeat in range(repeats):
            plan = plan_for(tmp, data, 1 + repeat, fast, slow, f"out-{count}")
            before = loop_seconds(plan)
            sweep, inside = sweep_seconds(url, plan)
            # Other processes on a shared machine come and go: the loop is timed on both sides
            # of the sweep and averaged, so both see the same load.
            timings.append(((before + loop_seconds(plan)) / 2, sweep, inside))
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=GOLDEN, help="bars (default: golden month)")
    parser.add_argument("--fast", default="5,10,15,20,25,30", help="fast windows")
    # 96 points: at about 10 ms a run, 24 points made a timed span of a quarter of a second, where
    # a scheduling hiccup of the shared machine weighed as much as the machinery being measured.
    parser.add_argument(
        "--slow",
        default="40,50,60,70,80,90,100,110,120,130,140,150,160,170,180,200",
        help="slow windows",
    )
    parser.add_argument("--repeats", type=int, default=5, help="best of this many (default 5)")
    args = parser.parse_args()
    fast = [int(v) for v in args.fast.split(",")]
    slow = [int(v) for v in args.slow.split(",")]
    data = args.data.resolve()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as name:
        tmp = Path(name)
        n = len(plan_for(tmp, data, 1, fast, slow).runs)
        one = with_workers(1, tmp, data, fast, slow, args.repeats)
        two = with_workers(2, tmp, data, fast, slow, args.repeats)
    loop = min(t[0] for t in one + two)
    best_one = min(t[1] for t in one)
    best_two = min(t[1] for t in two)
    # Medians, not minima: a minimum of differences is biased toward the luckiest repeat.
    overheads = [(sweep - around) / n * 1000 for around, sweep, _ in one]
    between = [(sweep - inside) / n * 1000 for _, sweep, inside in one]
    speedup = best_one / best_two
    print(
        f"points: {n}, bars per run: {load_bars(data).frame.height}, times: best of "
        f"{args.repeats}, overheads: median of {args.repeats}"
    )
    print(
        f"machine load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    print(
        f"engine loop, one process: {loop:7.2f} s  {n / loop:6.2f} runs/s  {loop / n * 1000:.1f} ms/run"
    )
    print(f"1 worker over NATS:       {best_one:7.2f} s  {n / best_one:6.2f} runs/s")
    print(f"2 workers over NATS:      {best_two:7.2f} s  {n / best_two:6.2f} runs/s")
    print(f"speed-up, 2 workers vs 1: {speedup:.2f}x (target >= 1.7x)")
    print(
        f"per-run overhead, 1 worker vs the loop timed around it: "
        f"{statistics.median(overheads):.1f} ms (range {min(overheads):.1f} to "
        f"{max(overheads):.1f}; target < 10 ms)"
    )
    print(
        f"per-run sweep time outside runs (report, next job, coordinator, server): "
        f"{statistics.median(between):.1f} ms (range {min(between):.1f} to {max(between):.1f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
