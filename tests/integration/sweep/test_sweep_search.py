"""A TPE search over NATS: the same trials, table and best point with one worker, with two, and
when the coordinator is killed mid-study and resumed. Each variant gets its own nats-server: runs
of one sweep id share message ids, so a second sweep on the same server would only read back the
first one's results."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import polars as pl
import pytest

from backtester.sweep.results import JOURNAL, RESULTS, best, read_journal
from backtester.sweep.study import STUDY_JOURNAL
from tests.sweep_support import GOLDEN, Processes, nats_servers, subprocess_env, wait_until

TRIALS = 64
CONFIG = f"""
name = "tpe"
seed = 5
constraints = ["fast < slow"]

[search]
method = "tpe"
trials = {TRIALS}
batch = 8
startup = 8
params = {{ fast = {{ randint = [2, 40] }}, slow = {{ randint = [10, 160], step = 10 }} }}

[base]
cash = 10000.0

[[base.data]]
kind = "file"
path = "{GOLDEN}"
symbol = "BTC/USDT"

[base.strategy]
name = "tests.sweep_strategies:Sleepy"
params = {{ delay_ms = 10 }}

[base.fees]
kind = "fixed"
rate = 0.001
"""


def _args(config: Path, out: Path, url: str, workers: int, *extra: str) -> list[str]:
    args = ["--log-json", "sweep", str(config), "--out", str(out), "--nats", url]
    return [*args, "--workers", str(workers), "--ack-wait", "2", *extra]


def _trials(directory: Path) -> list[tuple[int, str, str]]:
    """(number, state, params) of every trial in the study's journal, in order."""
    found: dict[int, list[str]] = {}
    for line in (directory / STUDY_JOURNAL).read_text().splitlines():
        op = json.loads(line)
        if "param_name" in op:
            found.setdefault(op["trial_id"], []).append(
                f"{op['param_name']}={op['param_value_internal']}"
            )
        if op.get("state") in (1, 2) and "trial_id" in op:  # COMPLETE, FAIL
            found.setdefault(op["trial_id"], []).append(f"state={op['state']}")
    return [(number, " ".join(entries)) for number, entries in sorted(found.items())]  # type: ignore[misc]


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("search")
    config = tmp / "search.toml"
    config.write_text(CONFIG)
    env = subprocess_env()
    found: dict[str, Path] = {}
    with Processes(tmp / "logs") as procs:
        for workers in (1, 2):
            with nats_servers(1) as (url,):
                out = tmp / f"w{workers}"
                done = procs.start(f"w{workers}", _args(config, out, url, workers), env)
                assert done.wait(180) == 0, procs.log(f"w{workers}")
                (found[f"w{workers}"],) = (out / "sweeps").iterdir()
        out = tmp / "killed"
        with nats_servers(1) as (url,):
            first = procs.start("first", _args(config, out, url, 2), env)
            journal = wait_until(lambda: next(out.glob(f"sweeps/*/{JOURNAL}"), None), 60, "journal")
            wait_until(lambda: len(read_journal(journal)) >= 20, 120, "20 results")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            found["at_kill"] = Path(str(len(read_journal(journal))))
            resume = ["--log-json", "sweep", "--resume", journal.parent.name, "--out", str(out)]
            resumed = procs.start(
                "resumed", [*resume, "--nats", url, "--workers", "1", "--ack-wait", "2"], env
            )
            assert resumed.wait(180) == 0, procs.log("resumed")
            found["killed"] = journal.parent
            found["resumed_log"] = tmp / "logs" / "resumed.log"
    return found


def test_one_worker_two_workers_and_a_killed_resumed_study_ask_the_same_trials(
    studies: dict[str, Path],
) -> None:
    assert 20 <= int(studies["at_kill"].name) < TRIALS  # the kill did land mid-study
    one, two, killed = (_trials(studies[k]) for k in ("w1", "w2", "killed"))
    assert len(one) >= TRIALS
    assert one == two == killed


def test_the_three_studies_write_the_same_results_table_and_best_point(
    studies: dict[str, Path],
) -> None:
    tables = [pl.read_parquet(studies[k] / RESULTS) for k in ("w1", "w2", "killed")]
    assert tables[0].height == TRIALS
    assert set(tables[0]["status"]) == {"ok"}
    assert (studies["w1"] / RESULTS).read_bytes() == (studies["w2"] / RESULTS).read_bytes()
    assert (studies["w1"] / RESULTS).read_bytes() == (studies["killed"] / RESULTS).read_bytes()
    bests = [
        best(t, "sharpe", "maximize", 1).select("param.fast", "param.slow").row(0) for t in tables
    ]
    assert bests[0] == bests[1] == bests[2]
    # The search did search: its later batches beat its random start on average.
    sharpe = tables[0]["sharpe"]
    assert sharpe.slice(TRIALS // 2).mean() > sharpe.head(8).mean()  # type: ignore[operator]
    assert "already done" in studies["resumed_log"].read_text()
