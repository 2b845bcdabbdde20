"""The `report` and `compare` commands. Registered like every command group (`register(subparsers)`);
Bokeh is imported only when one of them runs, so the CLI starts without the `report` extra."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path


class MissingExtra(ValueError):
    """The command needs an optional dependency that is not installed."""


def require_report_extra(what: str = "reports need", module: str = "bokeh") -> None:
    if not is_installed(module):
        raise MissingExtra(missing_extra(what, module))


def missing_extra(what: str, module: str = "bokeh") -> str:
    library = "the plotting library" if module == "bokeh" else module
    return f"{what} {library} of the `report` extra: pip install 'backtester[report]'"


def is_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # in sys.modules as None: its import was blocked
        return False


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser(
        "report",
        help="write the HTML report of a run, a sweep or a walk-forward directory",
        description=(
            "Write a self-contained HTML report (works offline). For a run directory "
            "(runs/<run_id>): statistics, price with fills and stop/limit levels, equity, "
            "drawdown, exposure, monthly returns, trade distributions and the manifest, as "
            "runs/<run_id>/report.html. For a sweep directory (runs/sweeps/<sweep_id>): the "
            "objective over two parameters, each parameter against it, and the top points linked "
            "to their run reports, as runs/sweeps/<sweep_id>/report.html. For a walk-forward "
            "directory (runs/walkforward/<id>): the folds, the stitched out-of-sample equity "
            "and its statistics."
        ),
    )
    report.add_argument(
        "directory",
        metavar="DIR",
        help="runs/<run_id>, runs/sweeps/<sweep_id> or runs/walkforward/<id>",
    )
    report.add_argument(
        "--out", metavar="FILE", help="where to write the page (default: DIR/report.html)"
    )
    report.add_argument(
        "--overlay",
        action="append",
        default=[],
        metavar="NAME",
        help=(
            "draw an indicator overlay on the price chart of a run report (smc: fair value gaps, "
            "order blocks, swing points, BOS/CHoCH); a strategy's own overlays are always drawn"
        ),
    )
    sweep = report.add_argument_group("sweep reports")
    sweep.add_argument("--x", metavar="PARAM", help="heatmap x parameter (default: the first)")
    sweep.add_argument("--y", metavar="PARAM", help="heatmap y parameter (default: the second)")
    sweep.add_argument(
        "--objective", metavar="STAT", help="rank by this stat (default: the sweep's)"
    )
    sweep.add_argument(
        "--minimize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="lower is better (default: the sweep's direction)",
    )
    sweep.add_argument(
        "--top", type=int, metavar="N", help="rows in the top table (default: the config's top)"
    )
    sweep.add_argument(
        "--runs-dir",
        metavar="DIR",
        help="where the points' run directories are (default: the runs/ holding sweeps/)",
    )
    report.set_defaults(handler=_report)

    compare = commands.add_parser(
        "compare",
        help="compare two run directories",
        description=(
            "Print two runs' statistics side by side with their differences and the inputs that "
            "differ (config keys, data hashes, code version, seed), and write an HTML page that "
            "also overlays the equity curves (default: compare_<A>_<B>.html next to RUN_A)."
        ),
    )
    compare.add_argument("run_a", metavar="RUN_A")
    compare.add_argument("run_b", metavar="RUN_B")
    compare.add_argument("--out", metavar="FILE", help="where to write the HTML page")
    compare.set_defaults(handler=_compare)


def add_report_flag(run: argparse.ArgumentParser) -> None:
    """For the `run` command: `--report` also writes the run's report.html."""
    run.add_argument("--report", action="store_true", help="also write runs/<run_id>/report.html")


def report_after_run(args: argparse.Namespace, run_dir: Path) -> None:
    if getattr(args, "report", False):
        require_report_extra()
        from backtester.report.run_report import write_run_report

        print(f"report: {write_run_report(run_dir)}")


def _report(args: argparse.Namespace) -> int:
    require_report_extra()
    directory = Path(args.directory)
    if (directory / "walkforward.json").is_file():
        from backtester.report.walkforward_report import write_walk_forward_report

        path = write_walk_forward_report(directory, args.out)
    elif (directory / "results.parquet").is_file():
        from backtester.report.sweep_report import write_sweep_report

        path = write_sweep_report(
            directory,
            x=args.x,
            y=args.y,
            objective=args.objective,
            minimize=args.minimize,
            top=args.top,
            runs_dir=args.runs_dir,
            output=args.out,
        )
    else:
        from backtester.report.run_report import write_run_report

        path = write_run_report(directory, args.out, args.overlay)
    print(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def _compare(args: argparse.Namespace) -> int:
    require_report_extra()
    from backtester.report.compare import write_compare

    path, text = write_compare(args.run_a, args.run_b, args.out)
    print(text)
    print(f"page: {path}")
    return 0
