"""The `lookahead` command: the look-ahead check of a run config."""

from __future__ import annotations

import argparse

import polars as pl

from backtester.config import ConfigError
from backtester.config_file import load_config
from backtester.engine import Engine, assembly, engine_for_config
from backtester.lookahead import DEFAULT_CUTS, check_lookahead
from backtester.runs.inputs import load_data


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "lookahead",
        help="check that a config's strategy never uses data from after the bar it acts on",
        description=(
            "Run the config's backtest, then again on its data cut after seeded bars, and report "
            "every signal, order, fill, closed trade or registered indicator at or before a cut "
            "that differs from the full run (look-ahead). Exit 1 if there is any. Also reports "
            "how much each registered indicator depends on the history before it (warm-up)."
        ),
    )
    check.add_argument("config", metavar="CONFIG", help="path of a TOML run config")
    check.add_argument(
        "--cuts", type=int, default=DEFAULT_CUTS, metavar="K", help="points to cut the data at"
    )
    check.add_argument("--seed", type=int, default=0, help="seed of the cut points")
    check.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override one config value, as for `run`",
    )
    check.set_defaults(handler=_lookahead)


def _lookahead(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, overrides=args.overrides)
    try:
        assembly.strategy_params(assembly.strategy_class(cfg.strategy.name), cfg.strategy)
        loaded = load_data(cfg)
    except ConfigError as exc:
        raise exc.in_file(args.config) from None

    def factory(data: dict[str, pl.DataFrame]) -> Engine:
        # Marks, funding and given higher-timeframe bars as the run has them: the engine reads
        # them only over the bars given (a given hour only once it closed within the cut).
        return engine_for_config(
            cfg,
            data,
            marks=loaded.marks,
            funding=loaded.funding,
            instruments=loaded.instruments,
            timeframes=loaded.higher,
        )

    report = check_lookahead(factory, loaded.frames, cuts=args.cuts, seed=args.seed)
    print(report)
    return 0 if report.ok else 1
