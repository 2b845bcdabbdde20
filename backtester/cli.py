"""Command-line entry point: argument parsing and logging setup only; the work lives elsewhere.

Each command group registers its own subparser and sets `handler` (args -> exit code). A user error is a
`UserError` (or a `ValueError` subclass from the data layer), and so is an OS error (a read-only
directory, a full disk): one line on stderr naming the path, exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

# Each module has `register(subparsers)`. A group whose module is not in this installation (an
# optional part, or one not merged yet) is left out; an import error inside a group still fails.
COMMAND_GROUPS = (
    "backtester.runs.commands",
    "backtester.data.commands",
    "backtester.report.commands",
    "backtester.sweep.commands",
    "backtester.lookahead.commands",
)

# The group that registers each command. A command line naming one of them builds the parser from
# that group alone: importing a group imports what its commands need (ccxt for `data`, nats for
# `sweep`), which a `run` never uses. Help and unknown commands build all of them.
COMMANDS = {
    "run": "backtester.runs.commands",
    "verify": "backtester.runs.commands",
    "data": "backtester.data.commands",
    "report": "backtester.report.commands",
    "compare": "backtester.report.commands",
    "sweep": "backtester.sweep.commands",
    "worker": "backtester.sweep.commands",
    "lookahead": "backtester.lookahead.commands",
}


class UserError(Exception):
    """An error the user can fix (bad config, missing file): shown as one line, exit code 2."""


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv` (the arguments after the program name): with only the command group
    it names when it names a known command, else with every group."""
    parser = argparse.ArgumentParser(
        prog="python -m backtester",
        description="Deterministic, event-driven backtests of crypto markets.",
    )
    parser.add_argument("--log-json", action="store_true", help="log JSON lines instead of text")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _groups_for(argv):
        group = _command_group(name)
        if group is not None:
            group.register(commands)
    return parser


def _groups_for(argv: Sequence[str] | None) -> tuple[str, ...]:
    if argv is None:
        return COMMAND_GROUPS
    for arg in argv:
        if arg in ("-h", "--help"):
            return COMMAND_GROUPS
        if not arg.startswith("-"):  # the command: top-level options take no value
            group = COMMANDS.get(arg)
            return (group,) if group in COMMAND_GROUPS else COMMAND_GROUPS
    return COMMAND_GROUPS


def _command_group(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        # Absent when the module or a package above it is missing (`backtester.runs` for
        # `backtester.runs.commands`); a missing import inside an existing group still fails.
        if exc.name is None or not (name == exc.name or name.startswith(exc.name + ".")):
            raise
        return None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(arguments).parse_args(arguments)
    from backtester.logs import configure_logging

    configure_logging(json=args.log_json)
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (UserError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (
        OSError
    ) as exc:  # a read-only directory, a full disk, a file-size limit: the user's to fix
        print(f"error: {os_error_text(exc)}", file=sys.stderr)
        return 2
    return code


def os_error_text(exc: OSError) -> str:
    """One line naming the path and what went wrong (`runs/x/stats.json: File too large`)."""
    text = exc.strerror or str(exc)
    if exc.filename is None:
        return text
    where = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
    return f"{where}: {text}"
