"""The look-ahead check: a strategy that uses only what was known at each bar does, on data cut after
bar t, exactly what it did up to t on the whole data. So re-run it on the data cut at seeded rows
and compare everything up to each cut with the full run: the signals of a `SignalStrategy`, the
orders submitted, the fills, the closed trades, and every registered indicator. Any difference is
look-ahead (or a strategy that depends on how much data follows, which is the same thing).

The warm-up report (`warmup.py`) is informational: it measures how much indicator values depend on
the history before them, which is not look-ahead but matters when a run starts late.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from backtester.engine import Engine
from backtester.metrics.stats import bar_interval_ns
from backtester.results import RunResult
from backtester.strategy.signal import SignalStrategy

EngineFactory = Callable[[dict[str, pl.DataFrame]], Engine]
DEFAULT_CUTS = 20
ORDER_KEYS = (
    "order_id",
    "ts_submitted",
    "instrument",
    "side",
    "type",
    "time_in_force",
    "quantity",
    "fraction",
    "limit_price",
    "stop_price",
    "tag",
)


@dataclass(frozen=True)
class Finding:
    """Something at or before a cut that differs between the cut run and the full run."""

    cut: int  # bars of the primary instrument kept
    cut_time: str  # the last kept bar's time
    kind: str  # signal, order, fill, trade, indicator or error
    detail: str

    def __str__(self) -> str:
        return f"cut at bar {self.cut:,} ({self.cut_time}): {self.kind}: {self.detail}"


@dataclass(frozen=True)
class Snapshot:
    """What a run decided and computed, for comparing two runs."""

    result: RunResult
    signal: np.ndarray | None
    indicators: dict[str, dict[str, np.ndarray]]


@dataclass(frozen=True)
class CutReport:
    bars: int
    cuts: tuple[int, ...]
    findings: tuple[Finding, ...] = field(default=())


def run_snapshot(factory: EngineFactory, data: dict[str, pl.DataFrame]) -> Snapshot:
    engine = factory(data)
    result = engine.run()
    strategy = engine.strategy
    signal = np.asarray(strategy.signal) if isinstance(strategy, SignalStrategy) else None
    return Snapshot(result, signal, engine.ctx.registered_indicators())


def cut_rows(bars: int, cuts: int, seed: int) -> tuple[int, ...]:
    """`cuts` distinct row counts in [1, bars), ascending, drawn from a generator seeded by `seed`
    (every row count when there are fewer)."""
    candidates = np.arange(1, bars, dtype=np.int64)
    if cuts >= len(candidates):
        return tuple(int(k) for k in candidates)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
    return tuple(int(k) for k in np.sort(rng.choice(candidates, size=cuts, replace=False)))


def intervals(data: dict[str, pl.DataFrame]) -> dict[str, int]:
    """Each stream's bar interval: a bar is known at its open time plus it (adr/0020)."""
    return {symbol: bar_interval_ns(frame["ts"].to_numpy()) for symbol, frame in data.items()}


def cut_data(data: dict[str, pl.DataFrame], known_ns: int) -> dict[str, pl.DataFrame]:
    """Every stream's bars known by `known_ns` (closed at or before it)."""
    spans = intervals(data)
    return {
        symbol: frame.filter(pl.col("ts") + spans[symbol] <= known_ns)
        for symbol, frame in data.items()
    }


def check_cuts(
    factory: EngineFactory,
    data: dict[str, pl.DataFrame],
    full: Snapshot,
    *,
    cuts: int = DEFAULT_CUTS,
    seed: int = 0,
) -> CutReport:
    primary = next(iter(data))
    ts = data[primary]["ts"].to_numpy()
    spans = intervals(data)
    rows = cut_rows(len(ts), cuts, seed)
    findings: list[Finding] = []
    for k in rows:
        # The cut is when the last kept bar of the primary stream closes.
        until = int(ts[k - 1]) + spans[primary]
        when = _time(int(ts[k - 1]))
        try:
            part = run_snapshot(factory, cut_data(data, until))
        except Exception as exc:  # the strategy's own code, on less data: a failure is a finding
            findings.append(
                Finding(
                    k, when, "error", f"the run on this data failed: {type(exc).__name__}: {exc}"
                )
            )
            continue
        found = compare(full, part, until, spans)
        findings += [Finding(k, when, kind, text) for kind, text in found]
    return CutReport(len(ts), rows, tuple(findings))


def compare(
    full: Snapshot, part: Snapshot, until_ns: int, spans: dict[str, int]
) -> list[tuple[str, str]]:
    """(kind, detail) of each way `part` (the run on the data known by `until_ns`) differs from
    `full` in what was known by then: orders submitted by then, fills and trades whose bar had
    closed by then (`spans`: each stream's bar interval)."""
    found: list[tuple[str, str]] = []
    if full.signal is not None and part.signal is not None:
        rows = len(part.signal)
        differs = np.flatnonzero(full.signal[:rows] != part.signal)
        if len(differs):
            i = int(differs[0])
            found.append(
                ("signal", f"row {i}: {int(full.signal[i])} on all data, {int(part.signal[i])} cut")
            )
    for symbol, named in full.indicators.items():
        for name, values in named.items():
            cut_values = part.indicators.get(symbol, {}).get(name)
            if cut_values is None:
                found.append(("indicator", f"{symbol} {name!r} is not registered on the cut data"))
                continue
            text = _first_difference(values[: len(cut_values)], cut_values)
            if text is not None:
                found.append(("indicator", f"{symbol} {name!r} {text}"))
    submitted = pl.col("ts_submitted").dt.epoch("ns")
    filled = pl.col("ts").dt.epoch("ns") + _span_of(spans)
    exited = pl.col("exit_time").dt.epoch("ns") + _span_of(spans)
    frames = (
        ("order", full.result.orders, part.result.orders, submitted, ORDER_KEYS),
        ("fill", full.result.fills, part.result.fills, filled, None),
        ("trade", _closed(full.result.trades), _closed(part.result.trades), exited, None),
    )
    for kind, whole, cut, known, keys in frames:
        text = _frame_difference(whole, cut, known, until_ns, keys)
        if text is not None:
            found.append((kind, text))
    return found


def _closed(trades: pl.DataFrame) -> pl.DataFrame:
    return trades.filter(~pl.col("is_open"))


def _span_of(spans: dict[str, int]) -> pl.Expr:
    """The bar interval of each row's instrument: a fill is stamped with its bar's open time."""
    return pl.col("instrument").replace_strict(spans, return_dtype=pl.Int64)


def _frame_difference(
    whole: pl.DataFrame,
    cut: pl.DataFrame,
    known: pl.Expr,
    until_ns: int,
    keys: tuple[str, ...] | None,
) -> str | None:
    def upto(frame: pl.DataFrame) -> pl.DataFrame:
        selected = frame.filter(known <= until_ns)
        return selected.select(keys) if keys else selected

    a, b = upto(whole), upto(cut)
    if a.equals(b):
        return None
    rows = zip(a.iter_rows(named=True), b.iter_rows(named=True), strict=False)
    for i, (left, right) in enumerate(rows):
        if left != right:
            changed = [c for c in a.columns if left[c] != right[c]]
            return f"#{i} differs in {', '.join(changed)}: {_brief(left)} on all data, {_brief(right)} cut"
    longer, name = (a, "all data") if a.height > b.height else (b, "the cut data")
    extra = longer.row(min(a.height, b.height), named=True)
    return f"{a.height} on all data, {b.height} cut; the first extra one ({name}): {_brief(extra)}"


def _first_difference(whole: np.ndarray, cut: np.ndarray) -> str | None:
    same = (whole == cut) | (np.isnan(whole) & np.isnan(cut))
    if same.all():
        return None
    i = int(np.flatnonzero(~same)[0])
    return f"row {i}: {whole[i]!r} on all data, {cut[i]!r} cut"


def _brief(row: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in row.items() if v is not None) + "}"


def _time(ns: int) -> str:
    return str(pl.Series([ns]).cast(pl.Datetime("ns", "UTC")).dt.strftime("%Y-%m-%d %H:%M").item())
