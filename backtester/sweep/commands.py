"""The `sweep` and `worker` commands: parse arguments, call the coordinator or the worker, print."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from backtester.data.redaction import without_userinfo
from backtester.sweep.cache import default_cache_dir
from backtester.sweep.config import SweepConfig, load_sweep_config
from backtester.sweep.coordinator import SweepOutcome, SweepSettings, run_sweep
from backtester.sweep.local import CREDENTIAL_ENV, URL_ENV, WorkersLost
from backtester.sweep.materialize import MaterializeError
from backtester.sweep.nats_adapter import BrokerError, Credentials, QueueSettings
from backtester.sweep.plan import build_plan
from backtester.sweep.results import SweepBusy, best, stored_config
from backtester.sweep.server import ServerError
from backtester.sweep.trust import check_prefixes
from backtester.sweep.worker import WorkerOptions, run_worker

T = TypeVar("T")
# Shown after the objective in the table of best points, when the run reports them.
SHOWN_STATS = ("total_return_pct", "max_drawdown_pct", "trades")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="run a parameter sweep on local worker processes or a NATS cluster",
        description=(
            "Expand a sweep config into seeded runs, run them on worker processes through NATS "
            "JetStream, and write <out>/sweeps/<sweep_id>/results.parquet (one row per point) "
            "and manifest.json. Without --nats, an embedded nats-server and --workers local "
            "workers are started and stopped with the sweep. Interrupted or killed sweeps "
            "continue with --resume SWEEP_ID, running only the points without a result."
        ),
    )
    sweep.add_argument("config", metavar="CONFIG", nargs="?", help="a TOML sweep config")
    sweep.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="local worker processes (default: one per core; 0 with --nats)",
    )
    sweep.add_argument("--nats", metavar="URL", help="use this NATS server or cluster")
    sweep.add_argument("--resume", metavar="SWEEP_ID", help="continue an earlier sweep")
    sweep.add_argument("--out", metavar="DIR", help="parent of sweeps/ (default: the config's)")
    sweep.add_argument("--top", type=int, metavar="N", help="best points to print")
    sweep.add_argument(
        "--materialize",
        type=int,
        default=1,
        metavar="N",
        help=(
            "write the best N runs as full run directories under the output directory, for the "
            "sweep report's links, verify and compare (default 1; 0 for none)"
        ),
    )
    sweep.add_argument(
        "--ack-wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="redeliver a job whose worker went silent this long (default 30)",
    )
    sweep.add_argument(
        "--max-deliver",
        type=int,
        default=3,
        metavar="N",
        help="deliveries of a job before its run is reported failed (default 3)",
    )
    _common(sweep)
    sweep.set_defaults(handler=_sweep)

    worker = commands.add_parser(
        "worker",
        help="run sweep jobs from a NATS server (on this or another machine)",
        description=(
            "Take sweep jobs from the NATS server at --nats, one at a time, until stopped "
            "(Ctrl-C or SIGTERM). Input data arrives through the server's object store and is "
            "cached by content hash in --cache-dir."
        ),
    )
    worker.add_argument("--nats", metavar="URL", help=f"NATS server URL(s) (or ${URL_ENV})")
    worker.add_argument("--name", help="worker name in results and logs (default host:pid)")
    worker.add_argument(
        "--allow-strategy",
        action="append",
        default=[],
        metavar="PREFIX",
        help=(
            "also run strategies from this module path or package (repeatable); without it only "
            "the built-in strategies run. A job names a module to import: allow only code you trust"
        ),
    )
    worker.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    _common(worker)
    worker.set_defaults(handler=_worker)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir", metavar="DIR", help=f"data cache (default: {default_cache_dir()})"
    )
    auth = parser.add_argument_group(
        "NATS authentication", "each option also reads an environment variable (shown)"
    )
    for field, flag, what in (
        ("user", "--user", "user name"),
        ("password", "--password", "password (prefer the environment variable)"),
        ("token", "--token", "token (prefer the environment variable)"),
        ("creds_file", "--creds", "credentials file (JWT + NKey seed)"),
        ("tls_ca", "--tls-ca", "CA certificate to verify the server"),
        ("tls_cert", "--tls-cert", "client certificate (mutual TLS)"),
        ("tls_key", "--tls-key", "client certificate key"),
    ):
        auth.add_argument(
            flag, dest=field, metavar="VALUE", help=f"{what}; ${CREDENTIAL_ENV[field]}"
        )
    parser.add_argument(
        "--log-json", action="store_true", default=argparse.SUPPRESS, help="log JSON lines"
    )


def _credentials(args: argparse.Namespace) -> Credentials:
    values = {
        field: getattr(args, field) or os.environ.get(name)
        for field, name in CREDENTIAL_ENV.items()
    }
    return Credentials(**values)


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _sweep(args: argparse.Namespace) -> int:
    from backtester.cli import UserError  # noqa: PLC0415  (the CLI imports this module)

    if args.config is None and args.resume is None:
        raise UserError("give a sweep CONFIG, or --resume SWEEP_ID")
    if args.config is not None:
        cfg = load_sweep_config(args.config, output_dir=args.out)
    else:
        cfg = stored_config(args.out or "runs", args.resume)
    if cfg.walk_forward is not None:
        return _walk_forward(cfg, args)
    plan = build_plan(cfg)
    if args.resume is not None and plan.sweep_id != args.resume:
        raise UserError(
            f"{args.config} is sweep {plan.sweep_id}, not {args.resume}: the config or its data "
            "changed since (resume with --resume alone to use the stored config)"
        )
    settings = _settings(args)
    search = cfg.search
    planned = (
        f"{len(plan.runs)} points"
        if search is None
        else f"{search.method} search, {search.trials} trials, at most {search.batch} in flight"
    )
    print(f"sweep {plan.sweep_id}: {planned} -> {plan.output_dir}", file=sys.stderr)
    outcome = _until_done(run_sweep(plan, settings), _resume_hint(plan.sweep_id, args))
    _print_outcome(outcome, args.top if args.top is not None else cfg.top)
    return 0


def _settings(args: argparse.Namespace) -> SweepSettings:
    from backtester.cli import UserError  # noqa: PLC0415  (the CLI imports this module)

    workers = args.workers if args.workers is not None else (0 if args.nats else _cores())
    if args.materialize < 0:
        raise UserError("--materialize must be 0 or more")
    if workers < 0 or (workers == 0 and not args.nats):
        raise UserError("--workers must be at least 1 without --nats")
    return SweepSettings(
        nats_url=args.nats,
        credentials=_credentials(args),
        workers=workers,
        queue=QueueSettings(ack_wait=args.ack_wait, max_deliver=args.max_deliver),
        cache_dir=args.cache_dir or "",
        resume=args.resume is not None,
        materialize=args.materialize,
    )


def _until_done(main: Coroutine[Any, Any, T], hint: str) -> T:
    """Run a sweep or a walk-forward; a stop or a lost server ends it with the command that
    continues it."""
    from backtester.cli import UserError, os_error_text  # noqa: PLC0415  (the CLI imports this)

    try:
        return _run_until_signal(main)
    except KeyboardInterrupt:
        print(f"sweep stopped; {hint}", file=sys.stderr)
        raise
    except (SweepBusy, MaterializeError) as exc:
        raise UserError(str(exc)) from None
    except (ServerError, ConnectionError, WorkersLost, BrokerError, TimeoutError) as exc:
        reason = str(exc) or type(exc).__name__
        raise UserError(f"{reason}. Sweep stopped; {hint}") from None
    except OSError as exc:  # e.g. a full disk under the journal
        raise UserError(f"{os_error_text(exc)}. Sweep stopped; {hint}") from None


def _walk_forward(cfg: SweepConfig, args: argparse.Namespace) -> int:
    from backtester.cli import UserError  # noqa: PLC0415  (the CLI imports this module)
    from backtester.sweep.walkforward import (  # noqa: PLC0415  (its imports on demand)
        FoldFailed,
        run_walk_forward,
    )

    wf = cfg.walk_forward
    assert wf is not None  # only walk-forward configs come here
    settings = _settings(args)
    windows = f"train {wf.train}, test {wf.test}, step {wf.step_or_test()}"
    if wf.anchored:
        windows += ", anchored"
    print(f"walk-forward {cfg.name}: {windows}", file=sys.stderr)
    try:
        outcome = _until_done(run_walk_forward(cfg, settings), _rerun_hint(args))
    except FoldFailed as exc:
        raise UserError(str(exc)) from None
    summary = outcome.summary
    print(f"walk-forward {summary.walk_forward_id}: {summary.folds} folds run out of sample")
    print(f"digest {summary.digest}")
    goal = cfg.ranking()
    params = [c for c in outcome.folds.columns if c.startswith("param.")]
    shown = ["fold", "test_start", *params, f"in_sample.{goal.stat}"]
    shown += [f"out_of_sample.{goal.stat}", "out_of_sample.total_return_pct", "run_id"]
    header = [c.removeprefix("param.").replace("_of_sample.", "_of_sample ") for c in shown]
    print(_table(outcome.folds.select(shown).rows(), header))
    stats = summary.stats
    if stats:
        picked = [s for s in ("total_return_pct", goal.stat, *SHOWN_STATS) if s in stats]
        line = ", ".join(f"{name} {_cell(stats[name])}" for name in dict.fromkeys(picked))
        print(f"out of sample, stitched: {line}")
    print(f"results: {outcome.directory}")
    return 0


def _rerun_hint(args: argparse.Namespace) -> str:
    command = "python -m backtester sweep " + (
        str(args.config) if args.config is not None else f"--resume {args.resume}"
    )
    if args.out:
        command += f" --out {args.out}"
    if args.nats:
        command += f" --nats {without_userinfo(args.nats)}"
    return f"finished folds are kept. Continue with: {command}"


def _resume_hint(sweep_id: str, args: argparse.Namespace) -> str:
    command = f"python -m backtester sweep --resume {sweep_id}"
    if args.out:
        command += f" --out {args.out}"
    if args.nats:
        # Never the password: credentials come back through the options or the environment.
        command += f" --nats {without_userinfo(args.nats)}"
    return f"results so far are kept. Continue with: {command}"


def _worker(args: argparse.Namespace) -> int:
    from backtester.cli import UserError  # noqa: PLC0415  (the CLI imports this module)

    url = args.nats or os.environ.get(URL_ENV)
    if not url:
        raise UserError(f"give the NATS server with --nats URL (or ${URL_ENV})")
    options = WorkerOptions(
        url=url,
        credentials=_credentials(args),
        cache_dir=args.cache_dir or str(default_cache_dir()),
        name=args.name or "",
        parent_pid=args.parent_pid,
        allow_strategies=tuple(_allowed(args.allow_strategy)),
    )
    try:
        return asyncio.run(run_worker(options))
    except ConnectionError as exc:
        raise UserError(str(exc)) from None


def _allowed(prefixes: list[str]) -> list[str]:
    from backtester.cli import UserError  # noqa: PLC0415  (the CLI imports this module)

    try:
        return check_prefixes(prefixes)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _run_until_signal(main: Coroutine[Any, Any, T]) -> T:
    """Run `main`; SIGTERM, like Ctrl-C, cancels it so every cleanup runs."""

    async def guarded() -> T:
        task = asyncio.ensure_future(main)
        # Windows has no loop signal handlers; there Ctrl-C alone stops a sweep cleanly.
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            raise KeyboardInterrupt from None

    return asyncio.run(guarded())


def _print_outcome(outcome: SweepOutcome, top: int) -> None:
    manifest = outcome.manifest
    objective = outcome.plan.config.ranking()
    print(
        f"sweep {manifest.sweep_id}: {manifest.points} points, {manifest.ok} ok, "
        f"{manifest.failed} failed ({outcome.published} run now, {outcome.already_done} "
        "already done)"
    )
    print(f"digest {manifest.digest}")
    ranked = best(outcome.table, objective.stat, objective.direction, top)
    if ranked.height:
        params = [c for c in ranked.columns if c.startswith("param.")]
        extra = [s for s in SHOWN_STATS if s in ranked.columns and s != objective.stat]
        columns = ["index", *params, objective.stat, *extra, "run_id"]
        print(f"best {ranked.height} by {objective.stat} ({objective.direction}):")
        print(_table(ranked.select(columns).rows(), [c.removeprefix("param.") for c in columns]))
    elif top:
        print(f"no successful point has a {objective.stat!r} statistic to rank by")
    print(f"results: {outcome.plan.output_dir / 'results.parquet'}")
    for directory in outcome.materialized:
        print(f"run directory: {directory}")


def _table(rows: list[tuple[Any, ...]], header: list[str]) -> str:
    cells = [header, *([_cell(v) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    return str(value)
