"""Round trips: a trade runs from the fill that opens a position from flat to the fill that brings it
back to flat, long or short. Partial entries and exits inside that span belong to the same trade; a
fill that crosses zero ends one trade and starts the next; funding paid while a trade is open is its
own.

A trade also says how it began and ended: `entry_tag` (the tag of the order that opened it),
`exit_reason` (signal for a strategy's own exit order with no tag of its own or a generic one,
stop_loss / take_profit / trailing_stop for a bracket's exits, liquidation, settlement, end_of_data
for a trade still open at the end, else the exit order's tag), its worst and best excursion while
open (`mae_pct`, `mfe_pct`: the lowest low and highest high of its bars, entry and exit bar included,
against the entry price, in percent; adverse is negative) and `bars_held`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import polars as pl
from polars._typing import PolarsDataType

from backtester.compiled.round_trips import (
    count_at_or_before,
    group_round_trips,
    range_extremes,
)

LIQUIDATION_TAG = "liquidation"

TRADE_SCHEMA: dict[str, PolarsDataType] = {
    "instrument": pl.String,
    "side": pl.String,
    "entry_time": pl.Datetime("ns", "UTC"),
    "exit_time": pl.Datetime("ns", "UTC"),
    "entry_price": pl.Float64,
    "exit_price": pl.Float64,
    "quantity": pl.Float64,
    "fees": pl.Float64,
    "funding": pl.Float64,
    "pnl": pl.Float64,
    "return_pct": pl.Float64,
    "duration": pl.Duration("ns"),
    "is_open": pl.Boolean,
    "liquidated": pl.Boolean,
    "entry_tag": pl.String,
    "exit_reason": pl.String,
    "mae_pct": pl.Float64,
    "mfe_pct": pl.Float64,
    "bars_held": pl.Int64,
}

# The columns made as numbers, in the schema's types.
_NUMERIC = (
    "entry_price",
    "exit_price",
    "quantity",
    "fees",
    "funding",
    "pnl",
    "return_pct",
    "is_open",
    "mae_pct",
    "mfe_pct",
    "bars_held",
)


# Tags of a strategy's plain exit orders: such an exit is a "signal" exit.
SIGNAL_TAGS = frozenset({"", "exit", "close", "signal", "entry"})
END_OF_DATA = "end_of_data"

# A run's funding payments, as `RunResult.funding` holds them; `fills_before` counts the fills booked
# before each payment, which places it among them.
FUNDING_SCHEMA: dict[str, PolarsDataType] = {
    "ts": pl.Datetime("ns", "UTC"),
    "instrument": pl.String,
    "rate": pl.Float64,
    "mark_price": pl.Float64,
    "quantity": pl.Float64,
    "amount": pl.Float64,
    "fills_before": pl.Int64,
}


# What the statistics take from the trades (`RoundTrips.summary`), in the trades frame's types,
# with `long` for the side.
SUMMARY_SCHEMA: dict[str, PolarsDataType] = {
    "is_open": pl.Boolean,
    "long": pl.Boolean,
    "pnl": pl.Float64,
    "return_pct": pl.Float64,
    "duration": pl.Duration("ns"),
}


class RoundTrips(NamedTuple):
    """A run's trades: `summary`, the columns the statistics take (`SUMMARY_SCHEMA`, one row a trade,
    the same values as the frame's), and `frame`, which builds the whole trades frame
    (`TRADE_SCHEMA`: names, tags, excursions) when called."""

    summary: pl.DataFrame
    frame: Callable[[], pl.DataFrame]


def round_trips(
    fills: pl.DataFrame,
    last_mark: dict[str, tuple[int, float]],
    multipliers: dict[str, float] | None = None,
    funding: pl.DataFrame | None = None,
    ranges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
    fill_rows: np.ndarray | None = None,
) -> pl.DataFrame:
    """`fills` as in RunResult.fills; `last_mark` marks still-open trades: instrument -> (ts, mark);
    `multipliers`: contract sizes (default 1); `funding` as in RunResult.funding; `ranges`: each
    instrument's bar times, highs and lows (without them excursions are 0 and bars held -1);
    `fill_rows`: each fill's row in its instrument's `ranges` when the caller knows it (the bar at
    or before the fill's time, which is otherwise searched for)."""
    return round_trip_record(fills, last_mark, multipliers, funding, ranges, fill_rows).frame()


class FillColumns(NamedTuple):
    """A run's fills as arrays, one element a fill (the columns of `RunResult.fills`): what the round
    trips and the digest read, without the frame. `symbols`: the instruments in the order of their
    first fill, `codes`: each fill's index there; `tags`: builds the tag column (None: no tags)."""

    ts: np.ndarray
    order_id: np.ndarray
    symbols: list[str]
    codes: np.ndarray
    buy: np.ndarray
    price: np.ndarray
    quantity: np.ndarray
    fee: np.ndarray
    tags: Callable[[], pl.Series | None]


def fill_columns(fills: pl.DataFrame) -> FillColumns:
    """The columns of a fills frame (`FILL_SCHEMA`), as arrays."""
    if fills.height == 0:
        symbols: list[str] = []
    else:
        instruments = fills["instrument"]
        first_name = instruments[0]
        # One instrument (most runs): a comparison, not a hash of every name.
        names = (
            pl.Series([first_name], dtype=pl.String)
            if bool((instruments == first_name).all())
            else instruments.unique(maintain_order=True)
        )
        symbols = names.to_list()
    codes = (
        np.zeros(fills.height, dtype=np.int64)
        if len(symbols) <= 1
        else fills["instrument"]
        .replace_strict(symbols, range(len(symbols)), return_dtype=pl.Int64)
        .to_numpy()
    )
    tags = fills["tag"] if "tag" in fills.columns else None
    return FillColumns(
        ts=fills["ts"].dt.epoch("ns").to_numpy(),
        order_id=fills["order_id"].to_numpy(),
        symbols=symbols,
        codes=codes,
        buy=(fills["side"] == "buy").to_numpy(),
        price=fills["price"].to_numpy(),
        quantity=fills["quantity"].to_numpy(),
        fee=fills["fee"].to_numpy(),
        tags=functools.partial(_given, tags),
    )


def _given(tags: pl.Series | None) -> pl.Series | None:
    return tags


def round_trip_record(
    fills: pl.DataFrame | FillColumns,
    last_mark: dict[str, tuple[int, float]],
    multipliers: dict[str, float] | None = None,
    funding: pl.DataFrame | None = None,
    ranges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
    fill_rows: np.ndarray | None = None,
) -> RoundTrips:
    """`round_trips`' grouping and arithmetic, now, with the frame (names, tags, excursions) left
    to be built when asked for. `fills`: the frame or its columns."""
    columns = fill_columns(fills) if isinstance(fills, pl.DataFrame) else fills
    if len(columns.ts) == 0:
        return RoundTrips(pl.DataFrame(schema=SUMMARY_SCHEMA), functools.partial(_no_trades))
    symbols = columns.symbols
    names = pl.Series(symbols, dtype=pl.String)
    codes = columns.codes
    sizes = np.array([(multipliers or {}).get(name, 1.0) for name in symbols], dtype=np.float64)
    paid = (
        funding.filter(pl.col("instrument").is_in(symbols))
        if funding is not None and funding.height
        else None
    )
    if paid is None or paid.height == 0:
        funding_codes = np.zeros(0, np.int64)
        amounts = np.zeros(0)
        after = np.zeros(0, np.int64)
    else:
        funding_codes = (
            paid["instrument"]
            .replace_strict(names, range(len(names)), return_dtype=pl.Int64)
            .to_numpy()
        )
        amounts = paid["amount"].to_numpy()
        after = paid["fills_before"].to_numpy()
    ts = columns.ts
    (
        symbol,
        side,
        first,
        last,
        entered,
        exited,
        entry_value,
        exit_value,
        fees,
        peak,
        funded,
        held,
    ) = group_round_trips(
        codes,
        columns.buy,
        columns.price,
        columns.quantity,
        columns.fee,
        sizes,
        funding_codes,
        amounts,
        after,
    )
    is_open = last < 0
    mark_ts = np.array([last_mark[name][0] for name in symbols], dtype=np.int64)
    mark_price = np.array([last_mark[name][1] for name in symbols], dtype=np.float64)
    exit_ts = np.where(is_open, mark_ts[symbol], ts[np.maximum(last, 0)])
    # Each expression as the trade's own arithmetic would write it, in the same order.
    value_out = np.where(
        is_open, exit_value + np.abs(held) * mark_price[symbol] * sizes[symbol], exit_value
    )
    long = side > 0
    pnl = np.where(long, value_out - entry_value, entry_value - value_out) - fees - funded
    exit_quantity = np.where(is_open, exited + np.abs(held), exited)
    entry_ts = ts[first]
    exit_row = np.maximum(last, 0)
    entry_price = _ratio(entry_value, entered * sizes[symbol])
    duration = exit_ts - entry_ts
    return_pct = _ratio(100.0 * pnl, entry_value)
    summary = pl.DataFrame(
        [
            pl.Series("is_open", is_open, dtype=pl.Boolean),
            pl.Series("long", long, dtype=pl.Boolean),
            pl.Series("pnl", pnl, dtype=pl.Float64),
            pl.Series("return_pct", return_pct, dtype=pl.Float64),
            pl.Series("duration", duration, dtype=pl.Int64).cast(SUMMARY_SCHEMA["duration"]),
        ]
    )
    known = None if fill_rows is None else (fill_rows[first], fill_rows[exit_row], is_open)
    frame_columns = {
        "instrument": symbol,
        "side": long,
        "entry_time": entry_ts,
        "exit_time": exit_ts,
        "entry_price": entry_price,
        "exit_price": _ratio(value_out, exit_quantity * sizes[symbol]),
        "quantity": peak,
        "fees": fees,
        "funding": funded,
        "pnl": pnl,
        "return_pct": return_pct,
        "duration": duration,
        "is_open": is_open,
        "first": first,
        "exit_row": exit_row,
    }
    build = functools.partial(
        _trades_frame, symbols, frame_columns, columns.tags, dict(ranges or {}), known
    )
    return RoundTrips(summary, build)


def _no_trades() -> pl.DataFrame:
    return pl.DataFrame(schema=TRADE_SCHEMA)


def _trades_frame(
    symbols: list[str],
    columns: dict[str, np.ndarray],
    tagged: Callable[[], pl.Series | None],
    ranges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    known: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
) -> pl.DataFrame:
    """The trades frame from `round_trip_record`'s columns, with the excursions over `ranges`."""
    mae, mfe, bars_held = _excursions(
        symbols,
        columns["instrument"],
        columns["side"],
        columns["entry_time"],
        columns["exit_time"],
        columns["entry_price"],
        ranges,
        known,
    )
    # Tags stay in polars (a column of strings read into numpy would be Python objects), taken
    # with the names and the string columns in one query over the numeric frame.
    tags = tagged()
    if tags is not None:
        tag = pl.lit(tags)
        entry_tag, exit_tag = tag.gather(pl.col("first")), tag.gather(pl.col("exit_row"))
    else:
        entry_tag = exit_tag = pl.lit("", dtype=pl.String)
    return pl.DataFrame(
        {**columns, "mae_pct": mae, "mfe_pct": mfe, "bars_held": bars_held},
        schema={
            **{name: TRADE_SCHEMA[name] for name in _NUMERIC},
            "instrument": pl.Int64,
            "side": pl.Boolean,
            "entry_time": pl.Int64,
            "exit_time": pl.Int64,
            "duration": pl.Int64,
            "first": pl.Int64,
            "exit_row": pl.Int64,
        },
    ).select(
        (
            pl.lit(symbols[0], dtype=pl.String)
            if len(symbols) == 1
            else pl.col("instrument").replace_strict(
                range(len(symbols)), symbols, return_dtype=pl.String
            )
        ).alias("instrument"),
        pl.when(pl.col("side")).then(pl.lit("long")).otherwise(pl.lit("short")).alias("side"),
        pl.col("entry_time", "exit_time").cast(TRADE_SCHEMA["entry_time"]),
        "entry_price",
        "exit_price",
        "quantity",
        "fees",
        "funding",
        "pnl",
        "return_pct",
        pl.col("duration").cast(TRADE_SCHEMA["duration"]),
        "is_open",
        (~pl.col("is_open") & (exit_tag == LIQUIDATION_TAG).fill_null(False)).alias("liquidated"),
        entry_tag.alias("entry_tag"),
        pl.when(pl.col("is_open"))
        .then(pl.lit(END_OF_DATA))
        .when(exit_tag.is_in(sorted(SIGNAL_TAGS)))
        .then(pl.lit("signal"))
        .otherwise(exit_tag)
        .alias("exit_reason"),
        "mae_pct",
        "mfe_pct",
        "bars_held",
    )


def _excursions(
    symbols: list[str],
    codes: np.ndarray,
    long: np.ndarray,
    entry_ts: np.ndarray,
    exit_ts: np.ndarray,
    entry_price: np.ndarray,
    ranges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    known: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per trade: worst and best excursion in percent of the entry price, and the bars from the
    entry's bar to the exit's. `known`: the rows of each trade's entry and exit fills, and whether
    it is open (whose exit is the last mark, searched for)."""
    count = len(codes)
    mae, mfe = np.zeros(count), np.zeros(count)
    held = np.full(count, -1, dtype=np.int64)
    for code, name in enumerate(symbols):
        if name not in ranges:
            continue
        ts, high, low = ranges[name]
        mine = np.flatnonzero(codes == code)
        if not len(mine) or not len(ts):
            continue
        if known is None:
            first = np.maximum(_count_at_or_before(ts, entry_ts[mine]) - 1, 0)
            last = np.maximum(_count_at_or_before(ts, exit_ts[mine]) - 1, first)
        else:
            entry_rows, exit_rows, still_open = (column[mine] for column in known)
            first = entry_rows
            marked = np.searchsorted(ts, exit_ts[mine][still_open], side="right") - 1
            exit_rows[still_open] = marked
            last = np.maximum(exit_rows, first)
        held[mine] = last - first
        lowest, highest = np.empty(len(mine)), np.empty(len(mine))
        range_extremes(
            np.ascontiguousarray(first, dtype=np.int64),
            np.ascontiguousarray(last, dtype=np.int64),
            np.ascontiguousarray(high, dtype=np.float64),
            np.ascontiguousarray(low, dtype=np.float64),
            lowest,
            highest,
        )
        price = entry_price[mine]
        is_long = long[mine]
        with np.errstate(divide="ignore", invalid="ignore"):
            worst = 100.0 * np.where(is_long, lowest / price - 1.0, 1.0 - highest / price)
            best = 100.0 * np.where(is_long, highest / price - 1.0, 1.0 - lowest / price)
        # min(x, 0.0) and max(x, 0.0) as Python takes them (x itself on a tie or a NaN); no
        # excursion without a positive entry price.
        priced = price > 0.0
        mae[mine] = np.where(priced, np.where(worst > 0.0, 0.0, worst), 0.0)
        mfe[mine] = np.where(priced, np.where(best < 0.0, 0.0, best), 0.0)
    return mae, mfe, held


def _count_at_or_before(ts: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """How many of the ascending `ts` are <= each key (`np.searchsorted(..., side="right")`)."""
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    if len(keys) > 1 and bool((keys[1:] < keys[:-1]).any()):
        return np.searchsorted(ts, keys, side="right")
    out = np.empty(len(keys), dtype=np.int64)
    count_at_or_before(np.ascontiguousarray(ts, dtype=np.int64), keys, out)
    return out


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, and 0.0 where the denominator is 0."""
    out = np.zeros(len(numerator))
    np.divide(numerator, denominator, out=out, where=denominator != 0.0)
    return out
