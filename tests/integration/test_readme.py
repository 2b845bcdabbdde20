"""The README as a user follows it: its notebook examples, its config and its commands run exactly as
written, and the stats table it shows is the one the demo prints."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from backtester import Backtest, Strategy
from backtester.cli import main
from tests.cli_support import REPO, run_cli

README = (REPO / "README.md").read_text(encoding="utf-8")
DEMO = (REPO / "scripts" / "demo.sh").read_text(encoding="utf-8")


def blocks(language: str, *, after: str | None = None) -> list[str]:
    """The fenced blocks of `language`; with `after`, only those of the section with that heading."""
    text = README
    if after is not None:
        start = README.index(f"\n{after}\n")
        following = re.search(r"\n#{1,3} ", README[start + len(after) + 2 :])
        end = start + len(after) + 2 + following.start() if following else len(README)
        text = README[start:end]
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def demo_config() -> str:
    (found,) = re.findall(r"-m backtester run (\S+\.toml)", DEMO)
    return found


@pytest.fixture
def in_a_fresh_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding the repository's data and configs (as a clone's root does),
    so what the examples write (runs/) lands in a temporary place."""
    for name in ("golden", "configs", "tests"):
        (tmp_path / name).symlink_to(REPO / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_notebook_examples_run_as_written(in_a_fresh_directory: Path) -> None:
    examples = blocks("python")
    assert len(examples) >= 4
    namespace: dict[str, object] = {"__name__": "readme"}
    results = []
    for code in examples:
        exec(compile(code, "README.md", "exec"), namespace)
        results.append(namespace.get("result"))

    first, saved_one = results[0], results[1]  # the DataFrame example saves its run
    assert first.stats["bars"] == 7091  # type: ignore[attr-defined]
    assert first.stats["trades"] == 35  # type: ignore[attr-defined]
    assert saved_one.stats["bars"] == 2148  # type: ignore[attr-defined]
    saved = namespace["run_dir"]
    assert isinstance(saved, Path)
    assert (in_a_fresh_directory / saved / "manifest.json").is_file()
    # The strategy examples define classes; each trades on the README's data.
    for name in ("Breakout", "Momentum"):
        strategy = namespace[name]
        assert isinstance(strategy, type) and issubclass(strategy, Strategy)
        run = Backtest(
            "golden/data/binance_BTC-USDT_1h.csv", strategy, fee_rate=0.001, repair=True
        ).run()
        assert run.stats["trades"] > 0, name


def test_the_config_example_is_the_demo_config_and_runs(
    in_a_fresh_directory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (example,) = blocks("toml")
    assert example == (REPO / demo_config()).read_text(encoding="utf-8")
    config = in_a_fresh_directory / "example.toml"
    config.write_text(example, encoding="utf-8")
    assert main(["run", str(config), "--out", "runs"]) == 0
    digest = re.search(r"^digest +([0-9a-f]{32})$", capsys.readouterr().out, re.MULTILINE)
    assert digest is not None
    assert f"digest                    {digest[1]}" in README


def test_the_reproducible_run_commands_work_as_written(in_a_fresh_directory: Path) -> None:
    (commands,) = blocks("bash", after="## Reproducible runs")
    run_dir: str | None = None
    for line in commands.splitlines():
        command = line.split("#", 1)[0].strip()
        if not command:
            continue
        args = shlex.split(command)
        assert args[:3] == ["python", "-m", "backtester"], line
        if run_dir is not None:
            args = [a.replace("runs/<run_id>", run_dir) for a in args]
        done = run_cli(*args[3:], cwd=in_a_fresh_directory)
        assert done.returncode == 0, f"{line}\n{done.stdout}{done.stderr}"
        found = re.search(r"^run directory: (\S+)", done.stdout, re.MULTILINE)
        if found:
            run_dir = found[1]
    assert run_dir is not None


def test_the_stats_table_in_the_readme_is_the_one_the_demo_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", demo_config(), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    (shown,) = [b for b in blocks("text") if b.lstrip().startswith("start ")]
    table = printed[: printed.index("run directory: ")]
    assert shown == table


def test_the_quick_start_is_two_commands() -> None:
    (quick,) = blocks("bash", after="## Quick start")
    commands = [line.split("#", 1)[0].strip() for line in quick.splitlines() if line.strip()]
    assert commands == ["./scripts/demo.sh", "./scripts/test.sh"]
    assert os.access(REPO / "scripts" / "demo.sh", os.X_OK)


def test_the_demo_prints_where_its_report_and_run_directory_are(tmp_path: Path) -> None:
    # The demo script's own command line, with the output sent to a temporary directory.
    (line,) = [li for li in DEMO.splitlines() if "-m backtester run" in li]
    args = shlex.split(line.split("-m backtester", 1)[1].replace('"$@"', ""))
    done = subprocess.run(
        [sys.executable, "-m", "backtester", *args, "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    run_dir = re.search(r"^run directory: (\S+)$", done.stdout, re.MULTILINE)
    report = re.search(r"^report: (\S+)$", done.stdout, re.MULTILINE)
    assert run_dir and report, done.stdout
    assert Path(report[1]) == Path(run_dir[1]) / "report.html"
    assert Path(report[1]).is_file()
