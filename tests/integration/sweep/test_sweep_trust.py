"""Who may take part in a sweep: the embedded server admits only the sweep's own credential,
credentials never show in a command line or a log, and workers import only allowed strategies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import polars as pl
import pytest

from backtester.cli import main
from backtester.sweep.results import JOURNAL, RESULTS, read_journal
from tests.sweep_support import (
    Processes,
    cmdline,
    embedded_server,
    environ,
    local_workers,
    nats_servers,
    small_data,
    subprocess_env,
    sweep_config,
    wait_until,
)

PASSWORD_ENV = "BACKTESTER_NATS_PASSWORD"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_data(tmp_path_factory.mktemp("data") / "bars.parquet")


def _table(out: Path) -> pl.DataFrame:
    (directory,) = (out / "sweeps").iterdir()
    return pl.read_parquet(directory / RESULTS)


async def _refused(url: str, **auth: str) -> str:
    """Connect as an intruder would; the server's answer (an error) or "admitted"."""
    errors: list[str] = []

    async def record(exc: Exception) -> None:
        errors.append(str(exc))

    try:
        nc = await nats.connect(
            url, allow_reconnect=False, connect_timeout=2, error_cb=record, **auth
        )
    except Exception as exc:
        return " ".join([*errors, str(exc)])
    try:
        # Admitted: show what it could do, reading the job stream.
        await nc.jetstream().stream_info("BACKTESTER_JOBS")
    finally:
        await nc.close()
    return "admitted"


def test_the_embedded_server_admits_only_the_sweeps_own_credential(
    tmp_path: Path, data: Path
) -> None:
    config = sweep_config(
        tmp_path / "sweep.toml",
        data,
        params={"delay_ms": 400},
        grid={"fast": [5, 10], "slow": [20]},
    )
    out = tmp_path / "out"
    args = ["--log-json", "sweep", str(config), "--out", str(out), "--workers", "1"]
    args += ["--cache-dir", str(tmp_path / "cache")]
    with Processes(tmp_path / "logs") as procs:
        coordinator = procs.start("coordinator", args, subprocess_env())
        _, url = wait_until(lambda: embedded_server(coordinator.pid), 60, "the embedded server")
        (worker,) = wait_until(lambda: local_workers(coordinator.pid), 60, "the local worker")
        password = environ(worker)[PASSWORD_ENV]
        assert url.startswith("nats://127.0.0.1:")
        anonymous = asyncio.run(_refused(url))
        guessed = asyncio.run(_refused(url, user="backtester", password="backtester"))
        assert coordinator.wait(90) == 0, procs.log("coordinator")
        logs = procs.log("coordinator")
    assert "Authorization Violation" in anonymous
    assert "Authorization Violation" in guessed
    table = _table(out)
    assert table.height == 2
    assert set(table["status"]) == {"ok"}
    # The password travelled in the environment only: no command line, no log holds it.
    assert len(password) >= 32
    assert password not in " ".join(cmdline(worker))
    for path in [*out.rglob("*.log"), *out.rglob("*.json")]:
        assert password not in path.read_text(errors="replace"), path
    assert password not in logs


def test_a_password_in_the_nats_url_is_never_shown_and_a_wrong_one_says_so(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = sweep_config(tmp_path / "sweep.toml", data, grid={"fast": [5, 10], "slow": [20]})
    out = tmp_path / "out"
    with nats_servers(1, ["--user", "trader", "--pass", "hunter2-secret"]) as (url,):
        secret_url = url.replace("nats://", "nats://trader:hunter2-secret@")
        wrong_url = url.replace("nats://", "nats://trader:wrong@")
        with Processes(tmp_path / "logs") as procs:
            coordinator = procs.start(
                "coordinator",
                ["--log-json", "sweep", str(config), "--out", str(out), "--nats", secret_url,
                 "--workers", "1", "--cache-dir", str(tmp_path / "cache")],
                subprocess_env(),
            )  # fmt: skip
            (worker,) = wait_until(lambda: local_workers(coordinator.pid), 60, "the worker")
            worker_args = " ".join(cmdline(worker))
            assert coordinator.wait(90) == 0, procs.log("coordinator")
            coordinator_log = procs.log("coordinator")
        wrong = _cli(
            capsys, "sweep", str(config), "--out", str(tmp_path / "out2"), "--nats", wrong_url
        )
        wrong_worker = _cli(capsys, "worker", "--nats", url, "--user", "trader", "--password", "x")
    assert "hunter2-secret" not in worker_args
    assert "hunter2-secret" not in coordinator_log
    for path in [*out.rglob("*.log"), *out.rglob("*.json")]:
        assert "hunter2-secret" not in path.read_text(errors="replace"), path
    assert set(_table(out)["status"]) == {"ok"}
    for code, err in (wrong, wrong_worker):
        assert code == 2, err
        (line,) = [li for li in err.splitlines() if li.startswith("error: ")]
        assert "authorization failed: the server refused the credentials" in line
        assert "no servers available" not in err
    assert "trader:wrong" not in wrong[1]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


def test_a_worker_never_imports_a_strategy_module_it_does_not_allow(
    tmp_path: Path, data: Path
) -> None:
    marker = tmp_path / "imported.txt"
    config = sweep_config(
        tmp_path / "sweep.toml",
        data,
        strategy="tests.sweep_untrusted:Marked",
        grid={"fast": [5, 10], "slow": [20]},
    )
    out = tmp_path / "out"
    env = subprocess_env(BACKTESTER_TEST_IMPORT_MARKER=str(marker))
    with nats_servers(1) as (url,), Processes(tmp_path / "logs") as procs:
        worker = procs.worker("careful", url, tmp_path / "cache", env, allow=())
        coordinator = procs.start(
            "coordinator",
            ["--log-json", "sweep", str(config), "--out", str(out), "--nats", url,
             "--max-deliver", "2"],
            env,
        )  # fmt: skip
        assert coordinator.wait(90) == 0, procs.log("coordinator")
        assert worker.poll() is None
        worker_log = procs.log("careful")
    table = _table(out)
    assert table["status"].to_list() == ["failed", "failed"]
    for error in table["error"]:
        assert "strategy module 'tests.sweep_untrusted' is not allowed" in error
        assert "--allow-strategy" in error
    assert '"job.refused"' in worker_log
    # The coordinator imported it to plan the sweep; the worker never did, on either delivery.
    importers = [line.split()[-1] for line in marker.read_text().splitlines()]
    assert str(coordinator.pid) in importers
    assert str(worker.pid) not in importers
    (directory,) = (out / "sweeps").iterdir()
    assert len(read_journal(directory / JOURNAL)) == 2
