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

    python scripts/bench_sweep.py --search [--trials 200] [--batch 8] [--bars 525600] [--repeats N]
                                   [--study-repeats N]

measures a TPE search instead. First the optimizer's own cost per trial, without any run: the
real study (`sweep/study.py`: ask, make each point's run config and run id, tell the results
back in point order, the journal file synced once per window) told a synthetic objective of the
parameters,
next to optuna by itself on the same study (in-memory storage, nothing of this project's);
then the whole coordinator (collector, results journal, progress, ask and tell) driving the same
study against a runner that answers every job at once, so the time per trial is everything the
coordinator spends that is not a run. Each of these is the same study (same seed: the same
proposals, the same work) run from scratch `--repeats` times, printed as median, minimum and
maximum: on a shared machine the spread is the other processes' doing, and the minimum is the
least disturbed measurement of that fixed work (others only ever add to it).

Then the speed-up: a study (`--trials` trials, at most `--batch` in flight, identical for any
worker count) of year-long runs on a synthetic minute series, on 1 and on 2 warmed-up workers
over NATS (a server each), the two back to back in this process, `--study-repeats` times with
another seed each: the speed-up of each pair, and their median. `--strategy` picks what the
runs are: SmaCross (the default) takes the compiled path, a few tens of milliseconds of CPU a year,
where the optimizer's own few milliseconds a trial weigh; SmaExtended has an `on_bar` and runs on
the event path, most of a second a year, as a search over a strategy written in Python does.
The batch is 8 by default, the default of a `[search]` config: what a user's search runs with, on any number of workers (it is
part of the study, so the same for both counts). Per study it prints the CPU time of the
workers (and per run), of the coordinator from the first job to the last result (asking and
telling optuna, collecting, journaling) and of the server: on two cores the coordinator's and the
server's CPU is taken from the two workers, while one worker leaves them the other core; and
the share of the study's time the workers spent inside runs (the rest they waited for a job: at
a barrier, or for the coordinator). Around each pair, the machine's own figure: a fixed CPU-bound loop in one process, then in two at once;
what two processes got done against one is the most any 2-worker sweep could gain at that moment
(about 2 on two idle cores; less when other processes take a share).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from backtester.core.rng import module_rng
from backtester.data.bars import load_bars
from backtester.sweep import coordinator
from backtester.sweep.config import load_sweep_config
from backtester.sweep.coordinator import SweepSettings, run_sweep
from backtester.sweep.execute import execute, read_sources
from backtester.sweep.nats_adapter import QueueSettings
from backtester.sweep.plan import PlannedRun, SweepPlan, build_plan
from backtester.sweep.results import JOURNAL, read_journal
from backtester.sweep.spec import RunCompleted, encode
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
    execute(plan.runs[0].spec, read_sources(plan.runs[0].spec))  # imports, kernels: not timed
    started = time.perf_counter()
    data = read_sources(plan.runs[0].spec)
    for run in plan.runs:
        execute(run.spec, data)
    return time.perf_counter() - started


def _warm(procs: Processes, i: int) -> bool:
    return "run.reported" in procs.log(f"w{i}")


def sweep_seconds(url: str, plan: SweepPlan) -> tuple[float, float]:
    """(seconds from the first job to the last result, seconds the workers spent inside runs)."""
    settings = SweepSettings(nats_url=url, workers=0, queue=QueueSettings(ack_wait=30))
    outcome = asyncio.run(run_sweep(plan, settings, stream=io.StringIO()))
    if outcome.manifest.ok != len(plan.runs):
        raise RuntimeError(f"{outcome.manifest.failed} runs failed")
    reports = read_journal(plan.output_dir / JOURNAL)
    inside = sum(r.seconds for r in reports if isinstance(r, RunCompleted))
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
            wait_until(functools.partial(_warm, procs, i), 60, f"worker {i} warm")
        for repeat in range(repeats):
            plan = plan_for(tmp, data, 1 + repeat, fast, slow, f"out-{count}")
            before = loop_seconds(plan)
            sweep, inside = sweep_seconds(url, plan)
            # Other processes on a shared machine come and go: the loop is timed on both sides
            # of the sweep and averaged, so both see the same load.
            timings.append(((before + loop_seconds(plan)) / 2, sweep, inside))
    return timings


SEARCH_CONFIG = """
name = "bench-search"
seed = {seed}
constraints = ["fast < slow"]

[search]
method = "tpe"
trials = {trials}
batch = {batch}
startup = 10
params = {{ fast = {{ randint = [2, 60] }}, slow = {{ randint = [10, 300], step = 10 }} }}

[base]
cash = 10000.0

[[base.data]]
kind = "file"
path = "{data}"
symbol = "BTC/USDT"

[base.strategy]
name = "{strategy}"

[base.fees]
kind = "fixed"
rate = 0.0001
"""


def search_plan(
    tmp: Path, data: Path, seed: int, trials: int, batch: int, out: str, strategy: str = "SmaCross"
) -> SweepPlan:
    config = tmp / f"search-{seed}-{out}.toml"
    text = SEARCH_CONFIG.format(seed=seed, trials=trials, batch=batch, data=data, strategy=strategy)
    config.write_text(text)
    return build_plan(load_sweep_config(config, output_dir=str(tmp / out)))


def synthetic_report(plan: SweepPlan, run: PlannedRun) -> RunCompleted:
    """A result without a run: a smooth objective of the parameters with a little seeded noise."""
    fast, slow = run.params["fast"], run.params["slow"]
    noise = float(module_rng(run.seed, "bench").normal(0.0, 0.1))
    sharpe = 1.0 - ((fast - 20) / 15) ** 2 - ((slow - 150) / 80) ** 2 + noise
    return RunCompleted(
        sweep_id=plan.sweep_id,
        index=run.index,
        run_id=run.run_id,
        digest=run.run_id,
        stats={"sharpe": sharpe, "total_return_pct": 10 * sharpe, "trades": fast + slow},
    )


def ask_tell_ms(plan: SweepPlan) -> tuple[float, float, float]:
    """Of ask + tell + the sync once per window, per trial: (mean wall ms, mean CPU ms of this
    process, mean CPU ms over the last window of tells followed by an ask). The trials are told in point order, each
    tell followed by the asks it allows, as the coordinator does. On a shared machine the wall
    time also holds the time other processes had the core, so the CPU time is the figure to hold
    against the target."""
    from backtester.sweep.study import OptunaSearch

    plan.output_dir.mkdir(parents=True)
    search = OptunaSearch(plan, plan.output_dir)
    per_trial: list[tuple[float, float]] = []
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        in_flight = collections.deque(search.proposals())
        first = (time.perf_counter() - wall, time.process_time() - cpu)  # the first window
        while in_flight:
            run = in_flight.popleft()
            report = synthetic_report(plan, run)
            wall, cpu = time.perf_counter(), time.process_time()
            search.tell(run, report)
            if (run.index + 1) % search.window == 0:
                search.persist()
            in_flight += search.proposals()
            per_trial.append((time.perf_counter() - wall, time.process_time() - cpu))
    finally:
        search.close()
    # The last `window` tells that were followed by an ask (the study's last `window` tells ask
    # nothing more): the dearest asks, with the most trials in the model.
    window = per_trial[-2 * search.window : -search.window] or per_trial
    return (
        (first[0] + sum(w for w, _ in per_trial)) / len(per_trial) * 1000,
        (first[1] + sum(c for _, c in per_trial)) / len(per_trial) * 1000,
        sum(c for _, c in window) / len(window) * 1000,
    )


def optuna_alone_ms(plan: SweepPlan) -> float:
    """CPU ms per trial of optuna by itself on the same study: the same sampler settings, space,
    window of trials in flight and objective, in optuna's in-memory storage, without run configs,
    run ids, journal or reseeding. What is above it in `ask_tell_ms` is this project's share."""
    import optuna
    from optuna.samplers import TPESampler

    from backtester.sweep.study import distribution

    search = plan.config.search
    assert search is not None
    spaces = {name: distribution(d) for name, d in search.params.items()}
    sampler = TPESampler(
        seed=plan.config.seed,
        n_startup_trials=search.startup,
        multivariate=True,
        constant_liar=True,
    )
    study = optuna.create_study(sampler=sampler, direction="maximize")
    cpu = time.process_time()
    pending = collections.deque(study.ask(spaces) for _ in range(min(search.batch, search.trials)))
    asked = len(pending)
    while pending:
        trial = pending.popleft()
        fast, slow = trial.params["fast"], trial.params["slow"]
        study.tell(trial, 1.0 - ((fast - 20) / 15) ** 2 - ((slow - 150) / 80) ** 2)
        if asked < search.trials:
            pending.append(study.ask(spaces))
            asked += 1
    return (time.process_time() - cpu) / search.trials * 1000


class InstantRunner:
    """Answers every job at once with its synthetic result: the coordinator runs as it does with
    real workers, minus the runs."""

    def __init__(self, plan: SweepPlan) -> None:
        self.plan = plan
        self.published = 0
        self._waiting: list[bytes] = []

    async def replay(self) -> list[bytes]:
        return []

    async def submit(self, runs: list[PlannedRun]) -> None:
        self.published += len(runs)
        self._waiting += [encode(synthetic_report(self.plan, run)) for run in runs]

    async def next_batch(self, timeout: float) -> list[bytes]:
        found, self._waiting = self._waiting, []
        return found

    def check(self) -> None:
        return None


def coordinator_ms(plan: SweepPlan) -> tuple[float, float]:
    """Per trial, (wall ms, CPU ms) of the coordinator's loop (ask, publish, collect, journal,
    progress, tell), the results table and overfitting statistics written once at the end
    included in the CPU figure."""

    @contextlib.asynccontextmanager
    async def instant(*_: object) -> AsyncIterator[InstantRunner]:
        yield InstantRunner(plan)

    original = coordinator._runner
    coordinator._runner = instant  # type: ignore[assignment]
    try:
        settings = SweepSettings(local=True, workers=1, materialize=0)
        cpu = time.process_time()
        outcome = asyncio.run(run_sweep(plan, settings, stream=io.StringIO()))
        cpu = time.process_time() - cpu
    finally:
        coordinator._runner = original
    points = outcome.manifest.points
    return outcome.seconds / points * 1000, cpu / points * 1000


@dataclass(frozen=True)
class StudyTiming:
    seconds: float  # from the study's first job to its last result
    inside: float  # the workers' time inside the study's distinct runs
    runs: int  # the study's distinct runs (two trials with the same values are one run)
    workers_cpu: float  # CPU seconds of all the workers over the study
    coordinator_cpu: (
        float  # CPU seconds of the coordinator (this process) from first job to last result
    )
    server_cpu: float  # CPU seconds of the nats-server over the study
    load: float  # the machine's 1-minute load average when the study ended

    @property
    def cores(self) -> float:
        """CPU seconds of the workers, the coordinator and the server per second of the study."""
        return (self.workers_cpu + self.coordinator_cpu + self.server_cpu) / self.seconds


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_SPIN = "x = 0\nfor i in range(20_000_000):\n    x += i * i\n"


def machine_speedup() -> float:
    """How much more work two processes get done than one on this machine right now: a fixed
    CPU-bound loop in one process, then in two at once. On an idle machine with two cores, about
    2; with other processes running, less, and no sweep on two workers can do better."""

    def spin(count: int) -> float:
        started = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", _SPIN]) for _ in range(count)]
        for proc in procs:
            proc.wait()
        return time.perf_counter() - started

    return 2 * spin(1) / spin(2)


def _children(prefix: str) -> list[int]:
    """This process's child processes whose command name starts with `prefix` (Linux /proc)."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat.rsplit(")", 1)[1]
                if int(fields.split()[1]) == os.getpid() and name.startswith(prefix):
                    found.append(int(entry))
    return found


def search_pairs(
    tmp: Path, data: Path, trials: int, batch: int, repeats: int, strategy: str
) -> list[tuple[StudyTiming, StudyTiming, float]]:
    """Per repeat, a study on 1 and then on 2 warmed-up workers (each count on its own server),
    and `machine_speedup` measured before and after them (the mean). The two of a pair run back
    to back, so they see about the same load from the machine's other processes; each repeat is
    another study (another seed), the same on both."""
    with contextlib.ExitStack() as stack:
        urls: dict[int, str] = {}
        workers: dict[int, list[int]] = {}
        servers: dict[int, list[int]] = {}
        for count in (1, 2):
            before = set(_children("nats-server"))
            (url,) = stack.enter_context(nats_servers(1))
            servers[count] = sorted(set(_children("nats-server")) - before)
            procs = stack.enter_context(Processes(tmp / f"logs-search-{count}"))
            started = [
                procs.worker(f"w{i}", url, tmp / "cache", subprocess_env()) for i in range(count)
            ]
            sweep_seconds(url, plan_for(tmp, data, 2000 + count, [10, 20], [60], f"warm-{count}"))
            for i in range(count):
                wait_until(functools.partial(_warm, procs, i), 120, f"worker {i} warm")
            urls[count] = url
            workers[count] = [proc.pid for proc in started]
        pairs = []
        for repeat in range(repeats):
            timings = []
            machine = machine_speedup()
            for count in (1, 2):
                plan = search_plan(
                    tmp, data, 7 + repeat, trials, batch, f"search-{count}", strategy
                )
                queue = QueueSettings(ack_wait=60)
                settings = SweepSettings(nats_url=urls[count], workers=0, queue=queue)
                cpu = sum(map(_cpu_seconds, workers[count]))
                server = sum(map(_cpu_seconds, servers[count]))
                outcome = asyncio.run(run_sweep(plan, settings, stream=io.StringIO()))
                cpu = sum(map(_cpu_seconds, workers[count])) - cpu
                server = sum(map(_cpu_seconds, servers[count])) - server
                if outcome.manifest.ok != trials:
                    raise RuntimeError(f"{outcome.manifest.failed} runs failed")
                inside = {
                    r.run_id: r.seconds
                    for r in read_journal(plan.output_dir / JOURNAL)
                    if isinstance(r, RunCompleted)
                }
                timings.append(
                    StudyTiming(
                        seconds=outcome.seconds,
                        inside=sum(inside.values()),
                        runs=len(inside),
                        workers_cpu=cpu,
                        coordinator_cpu=outcome.cpu_seconds,
                        server_cpu=server,
                        load=os.getloadavg()[0],
                    )
                )
            pairs.append((timings[0], timings[1], (machine + machine_speedup()) / 2))
        return pairs


def _spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f}, min {min(values):.2f}, max {max(values):.2f}"


def cpu_ceiling(one: StudyTiming, two: StudyTiming) -> float:
    """What two workers could gain over one on two cores, from CPU times alone (so the load of
    other processes hardly enters it): against one worker that never waits (its study as long
    as its runs' CPU time; the coordinator and the server have the other core), the two-worker
    study at its shortest, half of all the CPU it needs (workers, coordinator, server), with no
    wait anywhere."""
    return one.workers_cpu / ((two.workers_cpu + two.coordinator_cpu + two.server_cpu) / 2)


def search_main(args: argparse.Namespace) -> int:
    from synthetic import synthetic_bars  # scripts/synthetic.py, beside this script

    with tempfile.TemporaryDirectory(prefix="bench-search-") as name:
        tmp = Path(name)
        small = tmp / "month.parquet"
        pl.read_parquet(GOLDEN).write_parquet(small)
        # The same study (same seed, so the same proposals and the same work) from scratch each
        # repeat: the spread is the machine's, not the optimizer's.
        asked = [
            ask_tell_ms(search_plan(tmp, small, 1, args.trials, args.batch, f"ask-tell-{r}"))
            for r in range(args.repeats)
        ]
        alone = [
            optuna_alone_ms(search_plan(tmp, small, 1, args.trials, args.batch, f"alone-{r}"))
            for r in range(args.repeats)
        ]
        looped = [
            coordinator_ms(search_plan(tmp, small, 2, args.trials, args.batch, f"loop-{r}"))
            for r in range(args.repeats)
        ]
        cpu = [c for _, c, _ in asked]
        print(
            f"TPE study of {args.trials} trials, at most {args.batch} in flight, 2 parameters, "
            f"{args.repeats} repeats"
        )
        print(
            "optimizer overhead per trial (ask + run config and run id + tell, journal synced "
            f"per window), ms CPU: {_spread(cpu)} (target < 5 ms); last window of asks: "
            f"{_spread([last for _, _, last in asked])}; ms wall: {_spread([w for w, _, _ in asked])}"
        )
        print(f"optuna by itself on the same study (in-memory), ms CPU: {_spread(alone)}")
        print(
            "coordinator per trial with runs that take no time (the above plus collecting, "
            f"journaling, progress, and the results written once), ms CPU: "
            f"{_spread([c for _, c in looped])}; ms wall (loop only): "
            f"{_spread([w for w, _ in looped])}"
        )
        print(
            f"machine load average (1 min) after these: {os.getloadavg()[0]:.2f} on "
            f"{os.cpu_count()} cores"
        )
        year = tmp / "year.parquet"
        synthetic_bars(args.bars).write_parquet(year)
        pairs = search_pairs(tmp, year, args.trials, args.batch, args.study_repeats, args.strategy)
    if not pairs:  # --study-repeats 0: the optimizer's overhead only
        return
    print(
        f"studies of {args.strategy}, {args.trials} trials, at most {args.batch} in flight, over "
        f"{args.bars:,} synthetic "
        f"minute bars over NATS, 1 then 2 workers, {len(pairs)} pairs (each pair one seed):"
    )
    # Inside runs: a run's own time on its worker, summed over the study's distinct runs (wall
    # time: it grows when the run's core is taken by another process, the coordinator included);
    # CPU: what the workers, the coordinator (from the first job to the last result) and the
    # server used; cores: all three per second of the study; workers in runs: the share of the
    # study's time each worker spent inside a run, the rest waiting for a job (the load of other
    # processes slows the runs but hardly moves it); machine: what two processes got done against
    # one, measured around the pair. No sweep on two workers can beat the machine figure.
    for one, two, machine in pairs:
        for count, study in ((1, one), (2, two)):
            print(
                f"  {count} worker{'s' if count > 1 else ' '}: {study.seconds:5.2f} s, "
                f"{study.inside:5.2f} s inside {study.runs} runs, CPU: workers "
                f"{study.workers_cpu:5.2f} s ({study.workers_cpu / study.runs * 1000:4.1f} ms/run), "
                f"coordinator {study.coordinator_cpu:4.2f} s, server {study.server_cpu:4.2f} s; "
                f"{study.cores:.2f} cores; workers in runs "
                f"{study.inside / (count * study.seconds):.1%}; load {study.load:.2f}"
            )
        print(
            f"  speed-up {one.seconds / two.seconds:.2f}x (machine: {machine:.2f}x); worker CPU "
            f"2 workers / 1 worker: {two.workers_cpu / one.workers_cpu:.2f}; CPU ceiling "
            f"{cpu_ceiling(one, two):.2f}x"
        )
    ratios = [one.seconds / two.seconds for one, two, _ in pairs]
    print(
        "CPU ceiling of the speed-up on two cores, whatever the load (one worker's study as "
        "long as its runs' CPU time, two workers' study as short as the CPU of its runs, "
        "coordinator and server spread over two cores): "
        f"{_spread([cpu_ceiling(o, t) for o, t, _ in pairs])}"
    )
    print(f"machine, two processes vs one, around the pairs: {_spread([m for *_, m in pairs])}")
    print(f"speed-up, 2 workers vs 1: {_spread(ratios)} (target >= 1.7x)")
    print(
        f"machine load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search", action="store_true", help="benchmark a TPE search instead")
    parser.add_argument("--trials", type=int, default=200, help="search trials (default 200)")
    parser.add_argument(
        "--batch", type=int, default=8, help="search batch: trials in flight (default 8)"
    )
    parser.add_argument(
        "--bars", type=int, default=525_600, help="bars of the search's runs (default: a year)"
    )
    parser.add_argument(
        "--study-repeats", type=int, default=3, help="pairs of search studies (default 3)"
    )
    parser.add_argument(
        "--strategy",
        default="SmaCross",
        choices=["SmaCross", "SmaExtended"],
        help="the search's strategy: SmaCross runs on the compiled path (tens of ms a year), "
        "SmaExtended's on_bar on the event path (about a second a year)",
    )
    parser.add_argument("--data", type=Path, default=GOLDEN, help="bars (default: golden month)")
    parser.add_argument("--fast", default="5,10,15,20,25,30", help="fast windows")
    # 96 points: at about 10 ms a run, 24 points made a timed span of a quarter of a second, where
    # a scheduling hiccup of the shared machine weighed as much as the machinery being measured.
    parser.add_argument(
        "--slow",
        default="40,50,60,70,80,90,100,110,120,130,140,150,160,170,180,200",
        help="slow windows",
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="repeats of each measurement (default 5)"
    )
    args = parser.parse_args()
    if args.search:
        return search_main(args)
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
