"""The `run` and `verify` commands: parse arguments, call the runner, print what the user reads."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from backtester.progress import bar_wanted
from backtester.report.commands import add_report_flag, report_after_run
from backtester.runs.runner import execute
from backtester.runs.verify import REPLAY_CHECKS, Check, verify_run

# The stats a terminal shows after a run; stats.json in the run directory has all of them.
SUMMARY = (
    "start",
    "end",
    "bars",
    "trades",
    "final_equity",
    "total_return_pct",
    "buy_and_hold_return_pct",
    "sharpe",
    "sortino",
    "max_drawdown_pct",
    "win_rate_pct",
    "profit_factor",
    "fees_paid",
)
# Shown too when the run traded contracts or liquidated: what a derivatives account adds.
DERIVATIVES_SUMMARY = ("long_trades", "short_trades", "funding_paid", "liquidations")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run",
        help="run a backtest from a TOML config and write runs/<run_id>/",
        description=(
            "Run the backtest a TOML config describes (see configs/), print its main statistics, "
            "and write the run directory: manifest.json, stats.json, trades/fills/orders/equity "
            "as Parquet, and the decoded config.toml. The run_id derives from the config, the "
            "data and the code, so the same inputs always land in the same directory."
        ),
    )
    run.add_argument("config", metavar="CONFIG", help="path of a TOML run config")
    run.add_argument("--seed", type=int, help="override the config's seed")
    run.add_argument(
        "--out", metavar="DIR", help="parent directory of the run directory (default: runs)"
    )
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override one config value, e.g. --set strategy.params.fast=12 (repeatable; the "
        "value is read as TOML, else as text)",
    )
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar over the bars (default: on a terminal, not in CI or with "
        "--log-json)",
    )
    add_report_flag(run)
    _log_json_flag(run)
    run.set_defaults(handler=_run)

    verify = commands.add_parser(
        "verify",
        help="replay a run directory and check it reproduces its digest",
        description=(
            "Re-run a run from its manifest.json and config.toml. Exit 0 when the digest "
            "reproduces from the recorded config and data; exit 1 otherwise, naming what changed "
            "(config, data file, code, dependencies, or the run's own files)."
        ),
    )
    verify.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, e.g. runs/<run_id>")
    _log_json_flag(verify)
    verify.set_defaults(handler=_verify)


def _log_json_flag(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS keeps the top-level flag's value unless the flag is given after the command too.
    parser.add_argument(
        "--log-json", action="store_true", default=argparse.SUPPRESS, help="log JSON lines"
    )


def _run(args: argparse.Namespace) -> int:
    outcome = execute(
        args.config,
        overrides=args.overrides,
        seed=args.seed,
        output_dir=args.out,
        progress=bar_wanted(args.progress),
    )
    print(format_stats(outcome.result.stats))
    print(f"{'digest':<24}  {outcome.result.digest}")
    warning = outcome.result.denial_warning()
    if warning is not None:
        print(f"warning: {warning}; see the reason column of orders.parquet", file=sys.stderr)
    if outcome.kept_existing:
        print(f"run directory: {outcome.directory} (already there with the same digest; kept)")
    else:
        print(f"run directory: {outcome.directory}")
    report_after_run(args, outcome.directory)
    return 0


def _verify(args: argparse.Namespace) -> int:
    verdict = verify_run(args.run_dir)
    print(f"verify {args.run_dir} (run {verdict.run_id})")
    width = max(len(check.name) for check in verdict.checks)
    for check in verdict.checks:
        status = _status(check, replayed=verdict.replay_failure is None)
        print(f"  {check.name:<{width}}  {status:<8}  {check.detail}")
    if verdict.passed:
        print("PASSED: the digest reproduces from the recorded config and data")
        return 0
    failure = verdict.replay_failure
    if failure is not None and not verdict.causes:
        print(f"FAILED: the run cannot be replayed here: {failure.detail}")
        return 1
    causes = ", ".join(check.label for check in verdict.causes) or "unknown (nondeterminism?)"
    if verdict.digest_ok:
        print(f"FAILED: the digest reproduces, but the recorded inputs changed: {causes}")
    else:
        print(f"FAILED: the digest does not reproduce; changed: {causes}")
    return 1


def _status(check: Check, *, replayed: bool) -> str:
    if check.ok:
        return "ok"
    if check.name == "digest":
        return "MISMATCH" if replayed else "-"
    return "ERROR" if check.name in REPLAY_CHECKS else "CHANGED"


def format_stats(stats: dict[str, Any]) -> str:
    shown = [key for key in SUMMARY if key in stats]
    if stats.get("short_trades") or stats.get("funding_paid") or stats.get("liquidations"):
        shown.extend(key for key in DERIVATIVES_SUMMARY if key in stats)
    width = max(24, *(len(key) for key in shown))
    return "\n".join(f"{key:<{width}}  {_number(stats[key])}" for key in shown)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if math.isfinite(value) else str(value)
    return str(value)
