"""Walk-forward validation: per fold, optimize on the training window, then run the best point on the
test window that follows, which the optimization never saw; the out-of-sample runs, stitched end to
end, are what the strategy would have earned re-optimized on schedule.

Each fold's optimization is an ordinary sweep (`run_sweep`: any search method, local processes or
NATS, resumable, `<output_dir>/sweeps/<sweep_id>/`) over the base config with its data cut to the
training window, and each out-of-sample run an ordinary run directory `<output_dir>/<run_id>/`
(`verify` and `compare` take it). A window of a data file is stored once as the validated rows of
that window, Parquet named by content (`<output_dir>/data/`), and the fold's configs name that
file, so a fold's runs never hold a bar outside their window. An out-of-sample run starts flat
with the base config's cash, and its indicators warm up on its own test bars, as a strategy
started on that day would.

The walk-forward directory `<output_dir>/walkforward/<id>/` holds `folds.parquet` (one row per
fold: windows, the in-sample sweep and best point, the out-of-sample run and statistics),
`equity.parquet` (the stitched out-of-sample equity: each fold's curve scaled to start where the
previous fold ended), `walkforward.json` (settings, the stitched statistics, a digest over the
out-of-sample runs) and the config. Running it again reads the finished folds back.

A fold whose in-sample sweep has no point to run out of sample (every point failed, or none has a
value of the objective to rank by) ends the walk-forward with `FoldFailed`, naming the fold, its
training window and why: a stitched curve with a fold left out, or held flat, would be judged as if
the strategy had been re-optimized on schedule when it had not. The finished folds' sweeps are kept.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import msgspec
import polars as pl
import structlog

from backtester.config import FileSource, RunConfig
from backtester.manifest import utc_now
from backtester.metrics.stats import bar_interval_ns, compute_stats
from backtester.results import RunResult
from backtester.runs.inputs import load_source
from backtester.runs.notebook import store_bars
from backtester.runs.runner import replay, write_run
from backtester.sweep.config import SweepConfig, SweepConfigError, canonical_json, config_sha256
from backtester.sweep.coordinator import SweepOutcome, SweepSettings, run_sweep
from backtester.sweep.execute import decode_spec, source_files
from backtester.sweep.folds import NS_PER, Fold, duration_ns, folds
from backtester.sweep.plan import Keep, build_plan, point_seed, point_spec
from backtester.sweep.results import CONFIG, RESULTS, best
from backtester.sweep.spec import plain_stats

log = structlog.get_logger("backtester.sweep.walkforward")

DIRECTORY = "walkforward"
FOLDS = "folds.parquet"
EQUITY = "equity.parquet"
SUMMARY = "walkforward.json"
# Of each out-of-sample run, shown in the fold table beside the objective.
OOS_STATS = ("total_return_pct", "sharpe", "max_drawdown_pct", "trades")


class WalkForwardSummary(msgspec.Struct, frozen=True, kw_only=True):
    walk_forward_id: str
    name: str
    config_sha256: str
    train: str
    test: str
    step: str
    anchored: bool
    objective: dict[str, str]
    folds: int
    digest: str  # sha256 over the out-of-sample runs' digests in fold order
    stats: dict[str, Any]  # of the stitched out-of-sample equity
    started_at: str
    finished_at: str


class FoldFailed(RuntimeError):
    """A fold's in-sample sweep found no point to run out of sample."""


@dataclass(frozen=True)
class WalkForwardOutcome:
    directory: Path
    folds: pl.DataFrame
    equity: pl.DataFrame
    summary: WalkForwardSummary


@dataclass(frozen=True)
class _Source:
    spec: FileSource
    frame: pl.DataFrame
    sha256: str


@dataclass(frozen=True)
class _FoldResult:
    fold: Fold
    row: dict[str, Any]
    result: RunResult
    closes: tuple[float, float]  # first and last close of the test window's first series


def walk_forward_id(cfg: SweepConfig, sources: list[_Source], identity: str = "") -> str:
    content: dict[str, Any] = {
        "config": msgspec.json.decode(canonical_json(cfg)),
        "data": sorted(s.sha256 for s in sources),
    }
    if identity:
        content["keep"] = identity
    return hashlib.sha256(msgspec.json.encode(content, order="sorted")).hexdigest()[:16]


def plan_folds(cfg: SweepConfig) -> tuple[list[_Source], list[Fold]]:
    """The base config's data files, loaded and validated, and the folds that fit in them."""
    wf = cfg.walk_forward
    if wf is None:
        raise SweepConfigError("not a walk-forward config: it has no [walk_forward]")
    base = _base_spec(cfg.base)
    sources = []
    for index, source in enumerate(source_files(base)):
        if source.series not in ("ohlcv", "higher"):
            raise SweepConfigError(
                f"walk_forward: data[{index}] is a {source.series} series; walk-forward cuts "
                "bar files (ohlcv, and given higher-timeframe bars) into its windows only"
            )
        frame, entry = load_source(source, index)
        sources.append(_Source(source, frame, entry.sha256))
    # The folds span the bars (a given higher-timeframe series may reach further back).
    bars = [s for s in sources if s.spec.series == "ohlcv"]
    primary = bars[0].frame["ts"].to_numpy()
    first = min(int(s.frame["ts"][0]) for s in bars)
    end = max(int(s.frame["ts"][-1]) for s in bars) + bar_interval_ns(primary)
    train, test = duration_ns(wf.train), duration_ns(wf.test)
    found = folds(first, end, train, test, duration_ns(wf.step_or_test()), wf.anchored)
    if not found:
        days = (end - first) / NS_PER["d"]
        raise SweepConfigError(
            f"walk_forward: the data spans {days:.1f} days, less than train + test "
            f"({wf.train} + {wf.test}); shorten the windows or give more data"
        )
    return sources, found


async def run_walk_forward(
    cfg: SweepConfig,
    settings: SweepSettings,
    *,
    keep: Keep | None = None,
    identity: str = "",
    stream: TextIO | None = None,
) -> WalkForwardOutcome:
    started_at = utc_now()
    wf = cfg.walk_forward
    assert wf is not None  # plan_folds refuses a config without one
    sources, planned = plan_folds(cfg)
    wf_id = walk_forward_id(cfg, sources, identity)
    directory = Path(cfg.output_dir) / DIRECTORY / wf_id
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG).write_bytes(msgspec.json.encode(cfg) + b"\n")
    fold_settings = msgspec.structs.replace(settings, resume=True, materialize=0)
    results = []
    for fold in planned:
        log.info("fold.start", walk_forward_id=wf_id, fold=fold.number, folds=len(planned))
        results.append(await _run_fold(cfg, sources, fold, fold_settings, keep, identity, stream))
    table = _fold_table(cfg, results)
    equity = stitch([r.result.equity for r in results], [r.fold.number for r in results])
    stats = _stitched_stats(cfg, results, equity)
    digest = hashlib.sha256()
    for r in results:
        digest.update(r.result.digest.encode() + b"\n")
    goal = cfg.ranking()
    summary = WalkForwardSummary(
        walk_forward_id=wf_id,
        name=cfg.name,
        config_sha256=config_sha256(cfg),
        train=wf.train,
        test=wf.test,
        step=wf.step_or_test(),
        anchored=wf.anchored,
        objective={"stat": goal.stat, "direction": goal.direction},
        folds=len(results),
        digest=digest.hexdigest(),
        stats=stats,
        started_at=started_at,
        finished_at=utc_now(),
    )
    _write(directory / FOLDS, table)
    _write(directory / EQUITY, equity)
    text = msgspec.json.format(msgspec.json.encode(summary), indent=2) + b"\n"
    (directory / SUMMARY).write_bytes(text)
    return WalkForwardOutcome(directory, table, equity, summary)


async def _run_fold(
    cfg: SweepConfig,
    sources: list[_Source],
    fold: Fold,
    settings: SweepSettings,
    keep: Keep | None,
    identity: str,
    stream: TextIO | None,
) -> _FoldResult:
    out = Path(cfg.output_dir)
    train_base = _window_base(cfg.base, sources, fold.train_start, fold.train_end, out)
    fold_cfg = msgspec.structs.replace(
        cfg, base=train_base, walk_forward=None, name=f"{cfg.name}-fold{fold.number}"
    )
    plan = build_plan(fold_cfg, keep=keep, identity=identity)
    outcome = await run_sweep(plan, settings, stream=stream)
    goal = cfg.ranking()
    row: dict[str, Any] = {
        "fold": fold.number,
        "train_start": fold.train_start,
        "train_end": fold.train_end,
        "test_start": fold.test_start,
        "test_end": fold.test_end,
        "sweep_id": plan.sweep_id,
        "points": outcome.manifest.points,
        "ok": outcome.manifest.ok,
    }
    top = best(outcome.table, goal.stat, goal.direction, 1)
    names = cfg.parameters()
    if top.height == 0:
        raise FoldFailed(_no_point(fold, outcome, goal.stat))
    found = top.row(0, named=True)
    params = {name: found[f"param.{name}"] for name in names}
    row |= {f"param.{name}": params[name] for name in names}
    row[f"in_sample.{goal.stat}"] = found.get(goal.stat)
    test_base = _window_base(cfg.base, sources, fold.test_start, fold.test_end, out)
    spec: RunConfig = point_spec(test_base, params, point_seed(cfg.seed, params))
    spec = msgspec.structs.replace(spec, output_dir=str(out))
    started = utc_now()
    run = replay(spec, f"walk-forward fold {fold.number} out of sample")
    written = write_run(run, started)
    stats = plain_stats(dict(run.result.stats))
    row |= {"seed": spec.seed, "run_id": run.run_id, "digest": run.result.digest}
    for name in dict.fromkeys((goal.stat, *OOS_STATS)):
        row[f"out_of_sample.{name}"] = stats.get(name)
    closes = next(iter(run.data.frames.values()))["close"]
    log.info("fold.done", fold=fold.number, run_id=run.run_id, directory=str(written.directory))
    return _FoldResult(fold, row, run.result, (float(closes[0]), float(closes[-1])))


def _no_point(fold: Fold, outcome: SweepOutcome, stat: str) -> str:
    """Why the fold's sweep has no point to run out of sample, in one line."""
    manifest = outcome.manifest
    if manifest.ok == 0:
        errors = outcome.table.filter(pl.col("status") == "failed")["error"].drop_nulls()
        why = f"all {manifest.points} in-sample points failed"
        if errors.len():
            why += f" (first error: {errors[0]})"
    else:
        why = (
            f"none of the {manifest.ok} successful in-sample points has a {stat} to rank by "
            "(missing or NaN, as with no trades in the window)"
        )
    window = f"train {_when(fold.train_start)} to {_when(fold.train_end)}"
    return (
        f"walk-forward fold {fold.number} ({window}): {why}; nothing to run out of sample "
        f"(see {outcome.plan.output_dir / RESULTS})"
    )


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _base_spec(base: dict[str, Any]) -> RunConfig:
    raw = copy.deepcopy(base)
    raw.setdefault("seed", 0)
    try:
        return decode_spec(raw)
    except ValueError as exc:
        raise SweepConfigError(f"base: {exc}") from None


def _window_base(
    base: dict[str, Any], sources: list[_Source], start: int, end: int, out: Path
) -> dict[str, Any]:
    """The base config with each data file replaced by its rows in [start, end)."""
    raw = copy.deepcopy(base)
    data = []
    for source in sources:
        ts = pl.col("ts")
        # A given higher-timeframe series keeps its bars before the window: the window's history,
        # known at its start (the engine shows a bar only once it has closed).
        before = ts < end
        rows = source.frame.filter(
            before if source.spec.series == "higher" else (ts >= start) & before
        )
        if rows.height == 0:
            raise SweepConfigError(
                f"walk_forward: {source.spec.path} has no bars in a window of the folds; "
                "every data source must cover the whole span"
            )
        path = store_bars(rows, out / "data")
        # The stored rows are already validated and cut to the window.
        window = msgspec.structs.replace(
            source.spec, path=str(path), repair=False, start=None, end=None
        )
        data.append(msgspec.to_builtins(window))
    raw["data"] = data
    return raw


def stitch(curves: list[pl.DataFrame], numbers: list[int]) -> pl.DataFrame:
    """The out-of-sample equity curves end to end: each scaled so that it starts where the one
    before ended (as if the money were carried from fold to fold), its own value beside it."""
    parts: list[pl.DataFrame] = []
    carried = 1.0
    for curve, number in zip(curves, numbers, strict=True):
        own = curve["equity"].to_numpy()
        scale = carried / float(own[0]) if parts else 1.0
        parts.append(
            pl.DataFrame(
                {
                    "ts": curve["ts"],
                    "fold": pl.Series([number] * curve.height, dtype=pl.Int64),
                    "equity": own * scale,
                    "fold_equity": own,
                    "position_value": curve["position_value"].to_numpy() * scale,
                }
            )
        )
        carried = float(own[-1]) * scale
    if not parts:
        return pl.DataFrame(
            schema={
                "ts": pl.Datetime("ns", "UTC"),
                "fold": pl.Int64,
                "equity": pl.Float64,
                "fold_equity": pl.Float64,
                "position_value": pl.Float64,
            }
        )
    return pl.concat(parts)


def _stitched_stats(
    cfg: SweepConfig, results: list[_FoldResult], equity: pl.DataFrame
) -> dict[str, Any]:
    if equity.height == 0:
        return {}
    base = _base_spec(cfg.base)
    trades = pl.concat([r.result.trades for r in results])
    fees = sum(float(r.result.stats.get("fees_paid", 0.0)) for r in results)
    first, last = results[0].closes, results[-1].closes
    stats = compute_stats(
        equity.select("ts", "equity"),
        trades,
        initial_cash=base.cash,
        fees_paid=fees,
        first_close=first[0],
        last_close=last[1],
        exposure=equity["position_value"].to_numpy() != 0.0,
        periods_per_year=base.stats.periods_per_year,
        returns=base.stats.returns,
    )
    return plain_stats(dict(stats))


def _fold_table(cfg: SweepConfig, results: list[_FoldResult]) -> pl.DataFrame:
    goal = cfg.ranking()
    columns = ["fold", "train_start", "train_end", "test_start", "test_end", "sweep_id"]
    columns += ["points", "ok", *(f"param.{n}" for n in cfg.parameters())]
    columns += [f"in_sample.{goal.stat}", "seed", "run_id", "digest"]
    columns += [f"out_of_sample.{n}" for n in dict.fromkeys((goal.stat, *OOS_STATS))]
    frame = pl.DataFrame(
        {name: pl.Series([r.row.get(name) for r in results], strict=False) for name in columns}
    )
    times = ("train_start", "train_end", "test_start", "test_end")
    return frame.with_columns(
        pl.col(t).cast(pl.Int64).cast(pl.Datetime("ns", "UTC")) for t in times
    )


def _write(path: Path, frame: pl.DataFrame) -> None:
    partial = path.with_name(f".{path.name}.part")
    frame.write_parquet(partial)
    partial.replace(path)
