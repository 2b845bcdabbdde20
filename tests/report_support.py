"""Inputs for report tests: engine runs on the shipped data, run directories in the layout `run`
writes, and a one-year synthetic result built without the engine (for the size test)."""

from __future__ import annotations

import hashlib
import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from backtester import Backtest, RunResult, load_bars
from backtester.metrics.stats import compute_stats
from backtester.metrics.trades import round_trips
from backtester.report.data import RunData
from backtester.results import FILL_SCHEMA, equity_frame
from backtester.strategies import SmaExtended

REPO = Path(__file__).resolve().parent.parent
GOLDEN_BARS = REPO / "golden" / "data" / "binance_BTC-USDT_1m.parquet"
SYMBOL = "BTC/USDT"
NS_PER_MINUTE = 60 * 10**9

sys.path.insert(0, str(REPO / "scripts"))
from synthetic import synthetic_bars  # noqa: E402


def golden_run(rows: int | None = None, seed: int = 7, **params: Any) -> RunResult:
    """SmaExtended with a stop-loss and a take-profit on the real Binance bars (the first `rows`)."""
    bars = pl.read_parquet(GOLDEN_BARS)
    data = bars.head(rows) if rows else bars
    params = {"fast": 10, "slow": 30, "stop_loss_pct": 0.5, "take_profit_pct": 1.0, **params}
    return Backtest(data, SmaExtended, cash=100_000, fee_rate=0.001, seed=seed).run(**params)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_run_dir(
    result: RunResult,
    parent: Path,
    run_id: str,
    data_path: Path,
    *,
    config: str | None = None,
    git_sha: str = "0" * 40,
    recorded_path: str | None = None,
) -> Path:
    """A run directory as `python -m backtester run` leaves it: manifest.json, stats.json (NaN and
    infinities as strings), the four frames as Parquet, config.toml. The manifest records the data
    as `recorded_path` (default: `data_path`), the way the run's config named it."""
    recorded = recorded_path or data_path.as_posix()
    directory = parent / run_id
    directory.mkdir(parents=True)
    for name in ("trades", "fills", "orders", "equity"):
        getattr(result, name).write_parquet(directory / f"{name}.parquet")
    stats = {k: _json_value(v) for k, v in result.stats.items()}
    (directory / "stats.json").write_text(json.dumps(stats, indent=2))
    params = ", ".join(f"{k} = {_toml(v)}" for k, v in result.params.items() if v is not None)
    (directory / "config.toml").write_text(
        config
        or (
            f'cash = 100000.0\nseed = {result.seed}\n\n[[data]]\nkind = "file"\n'
            f'path = "{recorded}"\nsymbol = "{SYMBOL}"\n\n'
            f'[strategy]\nname = "{result.strategy}"\nparams = {{ {params} }}\n'
        )
    )
    bars = load_bars(data_path).frame
    manifest = {
        "manifest_version": 1,
        "run_id": run_id,
        "config_id": hashlib.sha256(run_id.encode()).hexdigest(),
        "seed": result.seed,
        "strategy": result.strategy,
        "git_sha": git_sha,
        "git_dirty": False,
        "package_version": "0.1.0",
        "code_sha256": hashlib.sha256(b"the package source").hexdigest(),
        "strategy_sha256": None,
        "python": "3.11.7",
        "platform": "Linux",
        "dependencies": {"polars": pl.__version__},
        "data": [
            {
                "symbol": SYMBOL,
                "source": "file",
                "path": recorded,
                "sha256": sha256_file(data_path),
                "rows": bars.height,
                "first_ts": _iso(int(bars["ts"][0])),
                "last_ts": _iso(int(bars["ts"][-1])),
                "repair": None,
                "partitions": None,
            }
        ],
        "started_at": "2024-04-01T00:00:00.000Z",
        "finished_at": "2024-04-01T00:00:05.000Z",
        "digest": result.digest,
        "outputs": {},
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return directory


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // 10**9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _toml(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def synthetic_year(minutes: int = 525_600, fast: int = 60, slow: int = 360) -> RunData:
    """A year of 1-minute bars and what a long-only SMA crossover with a resting stop would leave,
    computed with numpy instead of the engine so the size test stays fast. Fills are at the next bar's
    open after a crossover; equity is marked at each close."""
    raw = synthetic_bars(minutes)
    bars = raw.select((pl.col("timestamp_ms") * 1_000_000).alias("ts"), pl.exclude("timestamp_ms"))
    close = bars["close"].to_numpy()
    open_ = bars["open"].to_numpy()
    ts = bars["ts"].to_numpy()
    fast_ma = pl.Series(close).rolling_mean(fast).to_numpy()
    slow_ma = pl.Series(close).rolling_mean(slow).to_numpy()
    above = np.nan_to_num(fast_ma - slow_ma) > 0
    flips = np.flatnonzero(above[1:] != above[:-1]) + 1
    fill_rows = flips[flips + 1 < minutes] + 1
    sides = np.where(above[fill_rows - 1], "buy", "sell")
    if len(sides) and sides[0] == "sell":
        fill_rows, sides = fill_rows[1:], sides[1:]
    cash, held, fee_rate = 100_000.0, 0.0, 0.001
    quantities, fees = [], []
    cash_path = np.empty(minutes)
    held_path = np.empty(minutes)
    at = 0
    for row, side in zip(fill_rows.tolist(), sides.tolist(), strict=True):
        cash_path[at:row] = cash
        held_path[at:row] = held
        price = float(open_[row])
        quantity = round(cash / (price * (1 + fee_rate)), 6) if side == "buy" else held
        fee = quantity * price * fee_rate
        cash += -quantity * price - fee if side == "buy" else quantity * price - fee
        held += quantity if side == "buy" else -quantity
        quantities.append(quantity)
        fees.append(fee)
        at = row
    cash_path[at:] = cash
    held_path[at:] = held
    fills = pl.DataFrame(
        {
            "ts": ts[fill_rows],
            "order_id": np.arange(1, len(fill_rows) + 1) * 2 - 1,
            "instrument": [SYMBOL] * len(fill_rows),
            "side": sides.tolist(),
            "price": open_[fill_rows],
            "quantity": quantities,
            "fee": fees,
            "liquidity": ["taker"] * len(fill_rows),
            "leaves_quantity": [0.0] * len(fill_rows),
            "tag": [""] * len(fill_rows),
        },
        schema={**FILL_SCHEMA, "ts": pl.Int64},
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    equity = equity_frame(ts, cash_path, held_path * close)
    trades = round_trips(fills, {SYMBOL: (int(ts[-1]), float(close[-1]))})
    stats = compute_stats(
        equity,
        trades,
        initial_cash=100_000.0,
        fees_paid=float(sum(fees)),
        first_close=float(close[0]),
        last_close=float(close[-1]),
        exposure=held_path != 0.0,
    )
    return RunData(
        title="synthetic one-year SMA crossover",
        stats=stats,
        trades=trades,
        fills=fills,
        orders=_orders_with_stops(fills),
        equity=equity,
        bars={SYMBOL: bars},
        about={"strategy": "vectorized SMA crossover", "fast": fast, "slow": slow},
    )


def _orders_with_stops(fills: pl.DataFrame) -> pl.DataFrame:
    """A market order per fill, and for each entry a stop 2% below resting until the exit."""
    entries = fills.filter(pl.col("side") == "buy")
    exits = fills.filter(pl.col("side") == "sell")
    market = fills.select(
        "order_id",
        pl.col("ts").alias("ts_submitted"),
        "instrument",
        "side",
        pl.lit("market").alias("type"),
        pl.col("price").alias("avg_fill_price"),
        pl.col("ts").alias("ts_closed"),
        pl.lit(None, pl.Float64).alias("stop_price"),
        pl.lit("filled").alias("status"),
        pl.lit("").alias("tag"),
    )
    stops = entries.head(exits.height).select(
        (pl.col("order_id") + 1).alias("order_id"),
        pl.col("ts").alias("ts_submitted"),
        "instrument",
        pl.lit("sell").alias("side"),
        pl.lit("stop").alias("type"),
        pl.lit(None, pl.Float64).alias("avg_fill_price"),
        exits["ts"].alias("ts_closed"),
        (pl.col("price") * 0.98).alias("stop_price"),
        pl.lit("canceled").alias("status"),
        pl.lit("stop_loss").alias("tag"),
    )
    return (
        pl.concat([market, stops])
        .with_columns(pl.lit(None, pl.Float64).alias("limit_price"))
        .sort("order_id")
    )


def make_sweep_dir(root: Path, direction: str = "maximize") -> Path:
    """A sweep directory as the sweep leaves it: six points over fast x slow (one failed), with the
    run ids run0..run5."""
    directory = root / "runs" / "sweeps" / "sw1"
    directory.mkdir(parents=True)
    fast = [5, 5, 10, 10, 20, 20]
    slow = [30, 60, 30, 60, 30, 60]
    sharpe = [0.2, 1.4, -0.3, 0.8, None, 0.5]
    pl.DataFrame(
        {
            "index": list(range(6)),
            "param.fast": fast,
            "param.slow": slow,
            "param.fees.rate": [0.001] * 6,
            "seed": pl.Series([11, 12, 13, 14, 15, 16], dtype=pl.UInt64),
            "run_id": [f"run{i}" for i in range(6)],
            "status": ["ok", "ok", "ok", "ok", "failed", "ok"],
            "digest": ["d"] * 4 + [None, "d"],
            "error": [None] * 4 + ["ValueError: need 1 <= fast < slow", None],
            "sharpe": sharpe,
            "total_return_pct": [1.0, 5.0, -2.0, 3.0, None, 2.0],
            "trades": [10, 8, 12, 6, None, 4],
        }
    ).write_parquet(directory / "results.parquet")
    manifest = {
        "sweep_id": "sw1",
        "name": "sma",
        "seed": 7,
        "objective": {"stat": "sharpe", "direction": direction},
        "points": 6,
        "ok": 5,
        "failed": 1,
        "digest": "e" * 32,
        "data": [{"symbol": "BTC/USDT", "path": "golden/data/x.parquet", "sha256": "f" * 64}],
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory
