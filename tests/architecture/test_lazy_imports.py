"""What starting the library or a command costs in imports: the heavy parts (ccxt for fetching,
nats for sweeps, Bokeh for reports, numba for building kernels) load only where they are used.
Each check runs in a fresh interpreter, since this test process has imported everything already."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backtester import cli
from backtester.compiled.jit import active_backend

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("ccxt", "nats", "bokeh", "numba")


def heavy_modules_after(code: str, cwd: Path = REPO) -> list[str]:
    """The HEAVY packages imported once `code` has run in a fresh interpreter."""
    probe = (
        f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_import_backtester_loads_none_of_the_heavy_parts() -> None:
    assert heavy_modules_after("import backtester\nfrom backtester import *") == []


def test_the_run_parser_is_built_without_the_other_command_groups() -> None:
    code = "from backtester.cli import build_parser\nbuild_parser(['run', 'x.toml'])"
    assert heavy_modules_after(code) == []


def test_a_whole_cli_run_imports_none_of_the_heavy_parts(tmp_path: Path) -> None:
    """Not even numba: the kernels are loaded from their ahead-of-time build (adr/0012), where
    this installation has one."""
    code = (
        "from backtester.cli import main\n"
        f"assert main(['run', 'configs/sma_cross.toml', '--out', {str(tmp_path)!r}]) == 0"
    )
    expected = [] if active_backend() == "aot" else ["numba"]
    assert heavy_modules_after(code) == expected


def test_every_command_maps_to_the_group_that_registers_it() -> None:
    registered = {}
    for group in cli.COMMAND_GROUPS:
        parser = cli.build_parser([next(c for c, g in cli.COMMANDS.items() if g == group)])
        (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        registered.update(dict.fromkeys(commands.choices, group))
    assert registered == cli.COMMANDS


@pytest.mark.parametrize(
    ("argv", "groups"),
    [
        (["run", "c.toml"], ("backtester.runs.commands",)),
        (["--log-json", "worker", "--help"], ("backtester.sweep.commands",)),
        (["--help"], cli.COMMAND_GROUPS),
        (["no-such-command"], cli.COMMAND_GROUPS),
        ([], cli.COMMAND_GROUPS),
    ],
)
def test_the_groups_a_command_line_needs(argv: list[str], groups: tuple[str, ...]) -> None:
    assert cli._groups_for(argv) == groups
