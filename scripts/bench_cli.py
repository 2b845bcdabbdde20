"""The command line end to end: `python -m backtester run` on a year of 1-minute bars, from process
start to the run directory written, against the floor a Python process cannot go under
(`python -c "import polars, numpy"`) plus the warm run itself:

    python scripts/bench_cli.py [--bars 525600] [--rounds 5]

Each round runs, in turn and each in a fresh process: the floor; the CLI on a TOML config over a
Parquet file of synthetic bars (SmaCross on the compiled path, a 0.01% fee), into a fresh output
directory; and a process that loads the same file with `Backtest` and times 1 + 5 runs (warm: the
median of the 5 after the first). Figures are medians over the rounds; the ratio is
CLI / (floor + warm). The CLI's phases come from the timestamps of its JSON log lines.

Bytecode caches are allowed in every child (PYTHONDONTWRITEBYTECODE is dropped from their
environment), as in any installation.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

CONFIG = """\
seed = 0
cash = 100_000.0

[[data]]
kind = "file"
path = "{path}"
symbol = "BTC/USDT"

[[instruments]]
symbol = "BTC/USDT"
base = "BTC"
quote = "USDT"

[strategy]
name = "SmaCross"

[strategy.params]
fast = 10
slow = 30

[fees]
kind = "fixed"
rate = 0.0001
"""

WARM = """\
import json, statistics, sys, time
from backtester import Backtest
from backtester.strategies import SmaCross
bt = Backtest(sys.argv[1], SmaCross, cash=100_000.0, fee_rate=0.0001, mode="compiled")
seconds, cpu = [], []
for _ in range(6):
    started, cpu_started = time.perf_counter(), time.process_time()
    result = bt.run(fast=10, slow=30)
    seconds.append(time.perf_counter() - started)
    cpu.append(time.process_time() - cpu_started)
print(json.dumps({"first": seconds[0], "warm": statistics.median(seconds[1:]),
                  "warm_cpu": statistics.median(cpu[1:]), "digest": result.digest}))
"""


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(REPO)
    return env


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wall(args: list[str], cwd: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall seconds from spawn to exit, CPU seconds of the process, what it printed)."""
    cpu = children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        args, cwd=cwd, env=child_env(), capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
    return seconds, children_cpu() - cpu, done


def phases(stderr: str, spawned: float) -> dict[str, float]:
    """Seconds from the process's spawn to each log event (JSON lines)."""
    found = {}
    for line in stderr.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and "timestamp" in event:
            at = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
            found.setdefault(event["event"], at - spawned)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--bars", type=int, default=525_600)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from synthetic import synthetic_bars

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "bars.parquet"
        synthetic_bars(args.bars).write_parquet(data)
        config = root / "run.toml"
        config.write_text(CONFIG.format(path=data.as_posix()), encoding="utf-8")
        python = sys.executable
        floor_cmd = [python, "-c", "import polars, numpy"]
        warm_cmd = [python, "-c", WARM, str(data)]
        # One untimed pass fills the bytecode and kernel caches, as any installation has them.
        wall(floor_cmd, root)
        wall(warm_cmd, root)
        floors, clis, warms, firsts = [], [], [], []
        floors_cpu, clis_cpu, warms_cpu = [], [], []
        stages: list[dict[str, float]] = []
        digests = set()
        for round_ in range(args.rounds):
            seconds, cpu, _ = wall(floor_cmd, root)
            floors.append(seconds)
            floors_cpu.append(cpu)
            out = root / f"runs-{round_}"
            spawned = time.time()
            seconds, cpu, done = wall(
                [python, "-m", "backtester", "--log-json", "run", str(config), "--out", str(out)],
                root,
            )
            clis.append(seconds)
            clis_cpu.append(cpu)
            stages.append(phases(done.stderr, spawned))
            digests.add(json.loads(done.stderr.splitlines()[-2])["digest"][:16])
            measured = json.loads(wall(warm_cmd, root)[2].stdout.splitlines()[-1])
            warms.append(measured["warm"])
            warms_cpu.append(measured["warm_cpu"])
            firsts.append(measured["first"])
            digests.add(measured["digest"][:16])
            print(
                f"round {round_ + 1}: floor {floors[-1]:.3f} s, CLI {clis[-1]:.3f} s, "
                f"warm run {warms[-1]:.3f} s",
                file=sys.stderr,
                flush=True,
            )

    floor, cli, warm = (statistics.median(x) for x in (floors, clis, warms))
    floor_cpu, cli_cpu, warm_cpu = (statistics.median(x) for x in (floors_cpu, clis_cpu, warms_cpu))
    first = statistics.median(firsts)
    print(f"{args.bars:,} synthetic 1-minute bars, SmaCross(10, 30) on the compiled path")
    print(f"medians over {args.rounds} rounds (each a fresh process), wall seconds (CPU seconds):")
    print(f"  python -c 'import polars, numpy'     {floor:.3f} ({floor_cpu:.3f})")
    print(
        f"  warm run (Backtest.run, in memory)   {warm:.3f} ({warm_cpu:.3f}), first run {first:.3f}"
    )
    print(f"  python -m backtester run             {cli:.3f} ({cli_cpu:.3f})")
    print(
        f"  CLI / (floor + warm run)             {cli / (floor + warm):.2f}x "
        f"(CPU {cli_cpu / (floor_cpu + warm_cpu):.2f}x; target <= 3x)"
    )
    for event in ("data.loaded", "run.start", "run.finished", "run.written"):
        times = [s[event] for s in stages if event in s]
        if times:
            print(f"  CLI reaches {event:<14} at {statistics.median(times):.3f} s")
    print(f"digests of the CLI runs and the in-memory runs: {sorted(digests)} (one expected)")


if __name__ == "__main__":
    main()
