"""Validation of a bar or funding series before it enters the catalog, and of the catalog itself.

Policy, the same for downloads, imports and `data validate`:
- identical duplicate rows are dropped; of rows sharing a timestamp with different values the last
  one in arrival order is kept (an exchange sends the still-open candle first, the final one later);
- out-of-order rows are counted and sorted;
- rows that break a rule (null or NaN, high < low, high < max(open, close), low > min(open, close),
  price <= 0, volume < 0, timestamp off the timeframe grid) stop the write with a `DataError` naming
  the first bad row (0-based data row as read), unless the caller asked to drop them (reported);
- gaps are reported with their ranges and never filled;
- single-bar spikes are reported: a bar whose high (low) is more than `spike_threshold` above
  (below) the previous close while the next close is back within the threshold of that close.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Literal

import msgspec
import numpy as np
import polars as pl

from backtester.data.duplicates import resolve_duplicates
from backtester.data.errors import DataError
from backtester.data.timeframes import format_ms, format_timeframe

OHLCV_COLUMNS = ("timestamp_ms", "open", "high", "low", "close", "volume")
FUNDING_COLUMNS = ("timestamp_ms", "funding_rate")
DEFAULT_SPIKE_THRESHOLD = 0.15
_MAX_EXAMPLES = 20
_ROW = "_row"

Kind = Literal["ohlcv", "funding"]


class Gap(msgspec.Struct, frozen=True):
    """Missing bars: `start_ms` is the first missing open time, `end_ms` the next present one."""

    start_ms: int
    end_ms: int
    missing: int


class Spike(msgspec.Struct, frozen=True):
    timestamp_ms: int
    side: Literal["high", "low"]
    move: float


class RowProblem(msgspec.Struct, frozen=True):
    row: int
    timestamp_ms: int | None
    problem: str


class ValidationReport(msgspec.Struct, frozen=True):
    """What validation found and changed. `problems` lists the first offending rows only."""

    source: str
    rows_in: int
    rows_out: int
    identical_duplicates: int = 0
    conflicting_duplicates: int = 0
    out_of_order: int = 0
    invalid_rows: int = 0
    replaced_stored: int = 0
    problem_counts: dict[str, int] = {}
    problems: tuple[RowProblem, ...] = ()
    gaps: tuple[Gap, ...] = ()
    spikes: tuple[Spike, ...] = ()

    @property
    def missing_bars(self) -> int:
        return sum(g.missing for g in self.gaps)

    def summary(self) -> str:
        parts = [f"{self.rows_out} rows"]
        counts = {
            "identical duplicates dropped": self.identical_duplicates,
            "conflicting duplicates resolved (last kept)": self.conflicting_duplicates,
            "out-of-order rows sorted": self.out_of_order,
            "invalid rows dropped": self.invalid_rows,
            "stored rows replaced by different values": self.replaced_stored,
        }
        parts += [f"{n} {what}" for what, n in counts.items() if n]
        parts.append(f"{len(self.gaps)} gaps ({self.missing_bars} missing bars)")
        parts.append(f"{len(self.spikes)} spikes")
        return ", ".join(parts)


def conform(frame: pl.DataFrame, kind: Kind, source: str) -> pl.DataFrame:
    """Exactly the catalog columns, in order, with the catalog dtypes."""
    columns = OHLCV_COLUMNS if kind == "ohlcv" else FUNDING_COLUMNS
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(missing)}")
    try:
        return frame.select(
            pl.col("timestamp_ms").cast(pl.Int64),
            *[pl.col(c).cast(pl.Float64) for c in columns[1:]],
        )
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{source}: columns cannot be read as numbers: {exc}") from exc


def clean(
    frame: pl.DataFrame,
    *,
    kind: Kind,
    timeframe_ms: int,
    source: str,
    spike_threshold: float = DEFAULT_SPIKE_THRESHOLD,
    drop_invalid: bool = False,
) -> tuple[pl.DataFrame, ValidationReport]:
    """De-duplicate, sort and check rows; return the clean frame and what was found.

    For funding series `timeframe_ms` is the nominal funding interval; funding timestamps are not
    held to a grid (exchanges stamp them a few milliseconds after the hour).
    """
    data = conform(frame, kind, source).with_row_index(_ROW)
    columns = list(OHLCV_COLUMNS if kind == "ohlcv" else FUNDING_COLUMNS)
    rows_in = data.height
    ordered, resolved = resolve_duplicates(data, "timestamp_ms", columns[1:])

    flags = _row_checks(kind, timeframe_ms)
    flagged = ordered.with_columns(
        [expr.fill_null(False).alias(f"_bad{i}") for i, (_, expr) in enumerate(flags)]
    )
    bad_any = pl.any_horizontal([f"_bad{i}" for i in range(len(flags))])
    bad = flagged.filter(bad_any).sort(_ROW)
    counts: dict[str, int] = {}
    problems: list[RowProblem] = []
    if bad.height:
        for i, (name, _) in enumerate(flags):
            hits = bad.filter(pl.col(f"_bad{i}"))
            if hits.height:
                counts[name] = hits.height
        for row in bad.head(_MAX_EXAMPLES).iter_rows(named=True):
            names = [name for i, (name, _) in enumerate(flags) if row[f"_bad{i}"]]
            problems.append(RowProblem(row[_ROW], row["timestamp_ms"], "; ".join(names)))
        if not drop_invalid:
            first = bad.row(0, named=True)
            raise DataError(_first_problem_message(source, first, problems[0], counts))
    kept = flagged.filter(~bad_any).select(columns)

    gaps = find_gaps(
        kept["timestamp_ms"], timeframe_ms, tolerance=gap_tolerance(kind, timeframe_ms)
    )
    spikes = find_spikes(kept, spike_threshold) if kind == "ohlcv" else ()
    report = ValidationReport(
        source=source,
        rows_in=rows_in,
        rows_out=kept.height,
        identical_duplicates=resolved.identical,
        conflicting_duplicates=resolved.conflicting,
        out_of_order=resolved.out_of_order,
        invalid_rows=bad.height,
        problem_counts=counts,
        problems=tuple(problems),
        gaps=gaps,
        spikes=spikes,
    )
    return kept, report


def _row_checks(kind: Kind, timeframe_ms: int) -> list[tuple[str, pl.Expr]]:
    ts = pl.col("timestamp_ms")
    if kind == "funding":
        rate = pl.col("funding_rate")
        return [
            ("null or NaN value", ts.is_null() | rate.is_null() | rate.is_nan()),
            ("infinite value", rate.is_infinite()),
        ]
    values = [pl.col(n).is_null() | pl.col(n).is_nan() for n in OHLCV_COLUMNS[1:]]
    o, h, low, c, v = (pl.col(n) for n in OHLCV_COLUMNS[1:])
    return [
        ("null or NaN value", pl.any_horizontal(ts.is_null(), *values)),
        (
            "infinite value",
            pl.any_horizontal(*[pl.col(n).is_infinite() for n in OHLCV_COLUMNS[1:]]),
        ),
        ("high below low", h < low),
        ("high below max(open, close)", h < pl.max_horizontal(o, c)),
        ("low above min(open, close)", low > pl.min_horizontal(o, c)),
        ("non-positive price", pl.min_horizontal(o, h, low, c) <= 0),
        ("negative volume", v < 0),
        ("timestamp off the timeframe grid", ts % timeframe_ms != 0),
    ]


def _first_problem_message(
    source: str, values: dict[str, object], first: RowProblem, counts: dict[str, int]
) -> str:
    shown = ", ".join(f"{k}={values[k]}" for k in values if not k.startswith("_"))
    total = ", ".join(f"{n} x {name}" for name, n in counts.items())
    return (
        f"{source}: row {first.row}: {first.problem}: {shown} "
        f"(in all: {total}; rows are 0-based data rows as read)"
    )


def check_spacing(frame: pl.DataFrame, timeframe_ms: int, source: str) -> None:
    """Refuse candles whose own spacing is a multiple of the timeframe they are declared with:
    daily bars imported as 1m would be stored as 1m bars with a gap between every two of them."""
    stamps = frame["timestamp_ms"].drop_nulls().unique().sort()
    diffs = stamps.diff().drop_nulls()
    if diffs.len() < 2:
        return
    counts = diffs.value_counts(sort=True)
    spacing, share = int(counts[0, 0]), int(counts[0, 1]) / diffs.len()
    if spacing >= 2 * timeframe_ms and spacing % timeframe_ms == 0 and share > 0.5:
        raise DataError(
            f"{source}: most bars are {format_timeframe(spacing)} apart, not "
            f"{format_timeframe(timeframe_ms)}: is the timeframe {format_timeframe(spacing)}? "
            "(give the file's own timeframe; resample after import)"
        )


def gap_tolerance(kind: Kind, interval_ms: int) -> int:
    """How far apart two rows may be beyond one interval before a gap is counted: candles sit on
    their grid; funding times drift a little after the hour."""
    return interval_ms // 2 if kind == "funding" else 0


def find_gaps(timestamps: pl.Series, step_ms: int, *, tolerance: int = 0) -> tuple[Gap, ...]:
    """Ranges where consecutive timestamps are more than one step (+ tolerance) apart."""
    frame = pl.DataFrame({"ts": timestamps}).with_columns(prev=pl.col("ts").shift(1))
    holes = frame.filter(pl.col("ts") - pl.col("prev") > step_ms + tolerance)
    gaps = []
    for ts, prev in holes.select("ts", "prev").iter_rows():
        missing = round((ts - prev) / step_ms) - 1
        gaps.append(Gap(start_ms=prev + step_ms, end_ms=ts, missing=max(missing, 1)))
    return tuple(gaps)


def find_gaps_within(
    timestamps: pl.Series,
    step_ms: int,
    coverage: Sequence[tuple[int, int]],
    *,
    tolerance: int = 0,
) -> tuple[Gap, ...]:
    """`find_gaps` over sorted `timestamps`, plus the edges of each covered [start, end) range
    that hold no rows: a range known complete at the source whose first or last bars are missing,
    or that has no rows at all. Such a gap's `end_ms` is the range's end when no row follows."""
    between = find_gaps(timestamps, step_ms, tolerance=tolerance)
    starts = [g.start_ms for g in between]
    stamps = timestamps.to_numpy()
    edges: list[tuple[int, int]] = []
    for start, end in coverage:
        first = int(np.searchsorted(stamps, start, side="left"))
        last = int(np.searchsorted(stamps, end, side="left")) - 1
        if first > last:
            edges.append((start, end))
            continue
        if int(stamps[first]) - start > tolerance:
            edges.append((start, int(stamps[first])))
        if end - (int(stamps[last]) + step_ms) > tolerance:
            edges.append((int(stamps[last]) + step_ms, end))
    gaps = list(between)
    for start, end in edges:
        # An edge next to a row outside its range lies inside a gap between two rows.
        i = bisect.bisect_right(starts, start) - 1
        if i >= 0 and between[i].end_ms >= end:
            continue
        gaps.append(Gap(start_ms=start, end_ms=end, missing=max(round((end - start) / step_ms), 1)))
    return tuple(sorted(gaps, key=lambda g: g.start_ms))


def find_spikes(frame: pl.DataFrame, threshold: float) -> tuple[Spike, ...]:
    ref = pl.col("close").shift(1)
    reverted = (pl.col("close").shift(-1) / ref - 1).abs() <= threshold
    up = pl.col("high") / ref - 1
    down = 1 - pl.col("low") / ref
    found = frame.select(
        "timestamp_ms",
        up=pl.when(reverted & (up > threshold)).then(up),
        down=pl.when(reverted & (down > threshold)).then(down),
    ).filter(pl.col("up").is_not_null() | pl.col("down").is_not_null())
    spikes = []
    for ts, move_up, move_down in found.iter_rows():
        if move_up is not None:
            spikes.append(Spike(timestamp_ms=ts, side="high", move=round(move_up, 6)))
        if move_down is not None:
            spikes.append(Spike(timestamp_ms=ts, side="low", move=round(-move_down, 6)))
    return tuple(spikes)


def describe(report: ValidationReport, *, limit: int = 10) -> list[str]:
    """Human-readable lines for the command line."""
    lines = [f"{report.source}: {report.summary()}"]
    for name, n in report.problem_counts.items():
        lines.append(f"  invalid: {n} x {name}")
    for problem in report.problems[:limit]:
        when = format_ms(problem.timestamp_ms) if problem.timestamp_ms is not None else "?"
        lines.append(f"  row {problem.row} ({when}): {problem.problem}")
    for gap in report.gaps[:limit]:
        lines.append(
            f"  gap [{format_ms(gap.start_ms)}, {format_ms(gap.end_ms)}): {gap.missing} missing"
        )
    if len(report.gaps) > limit:
        lines.append(f"  ... {len(report.gaps) - limit} more gaps")
    for spike in report.spikes[:limit]:
        lines.append(f"  spike: {format_ms(spike.timestamp_ms)} {spike.side} {spike.move:+.2%}")
    if len(report.spikes) > limit:
        lines.append(f"  ... {len(report.spikes) - limit} more spikes")
    return lines
