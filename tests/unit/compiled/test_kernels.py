"""The compiled kernels give, bit for bit, what their uncompiled Python gives and what the plain
numpy / Python code they replaced gave (kept here as the reference)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtester.compiled import drawdown, indicators, round_trips, signal_path
from backtester.compiled.jit import Kernel
from backtester.metrics.stats import bar_interval_ns
from backtester.metrics.trades import TRADE_SCHEMA
from backtester.metrics.trades import _excursions as excursions
from backtester.metrics.trades import round_trips as trades_frame
from backtester.results import FILL_SCHEMA
from backtester.strategy.library.indicators import crossovers, rolling_sum_exact, tick_scale
from backtester.strategy.library.sma_cross import sma_cross_signals

# --- the implementations the kernels replaced -----------------------------------------------------


def reference_tick_scale(prices: np.ndarray, max_decimals: int = 8) -> int | None:
    for decimals in range(max_decimals + 1):
        scaled = prices * 10**decimals
        if np.abs(scaled).max(initial=0.0) >= 2**50:
            return None
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6):
            return int(10**decimals)
    return None


def reference_window_sums(prices: np.ndarray, window: int, scale: int) -> np.ndarray:
    out = np.full(len(prices), np.nan)
    if window > len(prices):
        return out
    ticks = np.round(prices * scale).astype(np.int64)
    csum = np.concatenate(([0], np.cumsum(ticks)))
    out[window - 1 :] = (csum[window:] - csum[:-window]).astype(np.float64)
    return out


def reference_crossovers(
    fast_sum: np.ndarray, fast: int, slow_sum: np.ndarray, slow: int
) -> np.ndarray:
    diff = fast_sum * slow - slow_sum * fast
    with np.errstate(invalid="ignore"):
        above, below = diff > 0, diff < 0
        at_or_below, at_or_above = diff <= 0, diff >= 0
    signal = np.zeros(len(diff), dtype=np.int8)
    signal[1:][above[1:] & at_or_below[:-1]] = 1
    signal[1:][below[1:] & at_or_above[:-1]] = -1
    return signal


def reference_round_trips(
    fills: pl.DataFrame, last_close: dict[str, tuple[int, float]]
) -> pl.DataFrame:
    """Long and short round trips, written out fill by fill (no funding, contract size 1)."""
    rows: list[dict[str, object]] = []
    trades: dict[str, dict[str, Any]] = {}

    def row(symbol: str, t: dict[str, Any], exit_ts: int, value_out: float, is_open: bool) -> None:
        gross = value_out - t["entry_value"] if t["long"] else t["entry_value"] - value_out
        pnl = gross - t["fees"] - 0.0
        exit_quantity = t["exited"] + (abs(t["held"]) if is_open else 0.0)
        rows.append(
            {
                "instrument": symbol,
                "side": "long" if t["long"] else "short",
                "entry_time": t["entry_ts"],
                "exit_time": exit_ts,
                "entry_price": t["entry_value"] / t["entered"] if t["entered"] else 0.0,
                "exit_price": value_out / exit_quantity if exit_quantity else 0.0,
                "quantity": t["peak"],
                "fees": t["fees"],
                "funding": 0.0,
                "pnl": pnl,
                "return_pct": 100.0 * pnl / t["entry_value"] if t["entry_value"] else 0.0,
                "duration": exit_ts - t["entry_ts"],
                "is_open": is_open,
                "liquidated": False,
            }
        )

    def opened(ts: int, long: bool) -> dict[str, Any]:
        t = dict.fromkeys(("held", "entered", "exited", "entry_value", "exit_value", "fees"), 0.0)
        t.update(entry_ts=ts, long=long, peak=0.0)
        return t

    for symbol, ts, side, price, quantity, fee in zip(
        fills["instrument"].to_list(),
        fills["ts"].dt.epoch("ns").to_list(),
        fills["side"].to_list(),
        fills["price"].to_list(),
        fills["quantity"].to_list(),
        fills["fee"].to_list(),
        strict=True,
    ):
        buy = side == "buy"
        t = trades.get(symbol)
        if t is None:
            t = trades[symbol] = opened(ts, buy)
        rest = 0.0
        closing_fee = 0.0
        if buy == t["long"]:
            t["held"] += quantity if buy else -quantity
            t["entered"] += quantity
            t["entry_value"] += quantity * price * 1.0
            t["fees"] += fee
        else:
            closing, closing_fee = quantity, fee
            if quantity > abs(t["held"]):
                closing = abs(t["held"])
                closing_fee = fee * (closing / quantity)
                rest = quantity - closing
            t["held"] += closing if buy else -closing
            t["exited"] += closing
            t["exit_value"] += closing * price * 1.0
            t["fees"] += closing_fee
            if rest > 0.0:
                t["held"] = 0.0
        t["peak"] = max(t["peak"], abs(t["held"]))
        if t["held"] == 0.0:
            row(symbol, t, ts, t["exit_value"], False)
            del trades[symbol]
            if rest > 0.0:
                t = trades[symbol] = opened(ts, buy)
                t.update(
                    held=rest if buy else -rest,
                    entered=rest,
                    entry_value=rest * price * 1.0,
                    fees=fee - closing_fee,
                    peak=rest,
                )
    for symbol, t in trades.items():
        ts, close = last_close[symbol]
        row(symbol, t, ts, t["exit_value"] + abs(t["held"]) * close * 1.0, True)
    schema = {name: TRADE_SCHEMA[name] for name in rows[0]} if rows else TRADE_SCHEMA
    return pl.DataFrame(rows, schema=schema, orient="row")


# --- inputs ---------------------------------------------------------------------------------------


@st.composite
def price_series(draw: st.DrawFn) -> np.ndarray:
    decimals = draw(st.integers(0, 4))
    n = draw(st.integers(0, 120))
    ticks = draw(st.lists(st.integers(1, 5_000_000), min_size=n, max_size=n))
    prices = np.array(ticks, dtype=np.float64) / 10**decimals
    if n and draw(st.booleans()):
        # Off any grid up to 8 decimals now and then.
        prices[draw(st.integers(0, n - 1))] += draw(st.sampled_from([1e-9, 0.3333333, np.pi]))
    return prices


@st.composite
def fill_streams(draw: st.DrawFn) -> pl.DataFrame:
    """Fills of up to three instruments that open, add to, reduce, close and reverse long and
    short positions."""
    symbols = ["A", "B", "C"][: draw(st.integers(1, 3))]
    held = dict.fromkeys(symbols, 0.0)
    rows = []
    for i in range(draw(st.integers(0, 40))):
        symbol = draw(st.sampled_from(symbols))
        price = draw(st.sampled_from([90.0, 99.5, 100.0, 101.25, 0.1, 0.7]))
        fee = draw(st.sampled_from([0.0, 0.01, 0.3]))
        position = held[symbol]
        if position != 0.0 and draw(st.booleans()):
            # Against the position: all of it, half of it, or through zero.
            share = draw(st.sampled_from([1.0, 0.5, 2.5]))
            quantity = abs(position) * share
            side = "sell" if position > 0 else "buy"
        else:
            quantity = draw(st.sampled_from([0.1, 0.5, 1.0, 3.0]))
            side = (
                ("buy" if position > 0 else "sell")
                if position
                else draw(st.sampled_from(["buy", "sell"]))
            )
        held[symbol] = position + quantity if side == "buy" else position - quantity
        if abs(held[symbol]) < 1e-12:
            held[symbol] = 0.0
        rows.append(
            (i * 60_000_000_000, i + 1, symbol, side, price, quantity, fee, "taker", 0.0, "")
        )
    return pl.DataFrame(rows, schema={**FILL_SCHEMA, "ts": pl.Int64}, orient="row").with_columns(
        pl.col("ts").cast(FILL_SCHEMA["ts"])
    )


# --- tests ----------------------------------------------------------------------------------------


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit for bit (so NaN equals NaN, and 0.0 differs from -0.0)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@settings(max_examples=200, deadline=None)
@given(price_series(), st.integers(1, 30), st.integers(2, 60))
def test_indicator_kernels_equal_the_numpy_code_they_replaced(
    prices: np.ndarray, fast: int, slow: int
) -> None:
    scale = tick_scale(prices)
    assert scale == reference_tick_scale(prices)
    if scale is None:
        return
    fast_sum = rolling_sum_exact(prices, fast, scale)
    slow_sum = rolling_sum_exact(prices, slow, scale)
    assert same(fast_sum, reference_window_sums(prices, fast, scale))
    assert same(slow_sum, reference_window_sums(prices, slow, scale))
    expected = reference_crossovers(fast_sum, fast, slow_sum, slow)
    assert same(crossovers(fast_sum, fast, slow_sum, slow), expected)
    if fast < slow:
        assert same(sma_cross_signals(prices, fast, slow), expected)
    fused = compiled_and_python(
        indicators.sma_cross_in_ticks, prices, fast, slow, scale, outputs=((len(prices), np.int8),)
    )
    assert same(fused[0][0], expected)
    assert same(fused[1][0], expected)


@pytest.mark.parametrize(("fast", "slow"), [(17, 40), (1, 2), (40, 17), (3, 2_500)])
def test_fused_sma_cross_where_ticks_are_too_large_for_block_sums(fast: int, slow: int) -> None:
    """Blocks of small ticks take their sums a block at once, blocks with (or within the windows
    of) a tick too large for that take them bar by bar; in between, either hands the other the
    same state. Long series of both, compiled and as Python, give the numpy reference's signal."""
    rng = np.random.Generator(np.random.PCG64(fast * slow))
    n = slow + 5 * 2048 + 3
    prices = rng.integers(1, 5_000_000, n).astype(np.float64)
    prices[2_100:2_200] *= 2.0**26  # larger than the block sums take, smaller than 2**50
    prices[40 + 3 * 2048 - 5] = 2.0**45  # a few bars before a block begins
    prices[-1] = 2.0**40  # the last bar
    assert tick_scale(prices) == 1
    fused = compiled_and_python(
        indicators.sma_cross_in_ticks, prices, fast, slow, 1, outputs=((n, np.int8),)
    )
    expected = reference_crossovers(
        reference_window_sums(prices, fast, 1), fast, reference_window_sums(prices, slow, 1), slow
    )
    assert np.count_nonzero(expected) > 100
    assert same(fused[0][0], expected)
    assert same(fused[1][0], expected)


def test_tick_scale_checks_every_block_of_prices() -> None:
    """The grid and the 2**50 bound are checked a block of prices at a time: a price off the grid,
    too large or NaN in a later block, or at the very end, decides as it would in the first."""
    rng = np.random.Generator(np.random.PCG64(5))
    prices = np.round(rng.uniform(10, 50_000, 3 * 1024 + 7), 2)
    assert tick_scale(prices) == reference_tick_scale(prices) == 100
    for where in (1024, 2 * 1024 + 500, len(prices) - 1):
        for value, expected in ((0.125, 1000), (1 / 3, None), (np.nan, None), (2.0**44, None)):
            changed = prices.copy()
            changed[where] = value
            assert tick_scale(changed) == reference_tick_scale(changed) == expected
            assert indicators.grid_decimals.py_func(changed, 8) == indicators.grid_decimals(
                changed, 8
            )
    # At the bound: 2**50 ticks is too many, one fewer is not.
    for edge, expected in ((np.array([1.5, 2.0**50]), None), (np.array([1.0, 2.0**50 - 1]), 1)):
        assert tick_scale(edge) == reference_tick_scale(edge) == expected


def test_tick_scale_of_real_prices_and_of_prices_off_every_grid() -> None:
    close = pl.read_parquet("golden/data/binance_BTC-USDT_1m.parquet")["close"].to_numpy()
    assert tick_scale(close) == reference_tick_scale(close) == 100
    assert tick_scale(close + 1e-9) == 100  # within the grid tolerance
    assert tick_scale(close + 1 / 3) is None
    assert tick_scale(np.array([np.inf])) is None
    assert tick_scale(np.array([np.nan, 1.0])) is None
    assert tick_scale(np.zeros(0)) == 1


@settings(max_examples=200, deadline=None)
@given(fill_streams())
def test_round_trips_equal_the_python_loop_they_replaced(fills: pl.DataFrame) -> None:
    last = {s: (10**15, 95.5) for s in ["A", "B", "C"]}
    expected = reference_round_trips(fills, last)
    # The round-trip arithmetic; the descriptive columns (tags, excursions) are pinned elsewhere.
    got = trades_frame(fills, last).select(expected.columns)
    assert got.schema == expected.schema
    assert got.equals(expected)


def compiled_and_python(
    kernel: Kernel[Any, Any], *args: Any, outputs: tuple[tuple[int, Any], ...] = ()
) -> tuple[Any, Any]:
    """The kernel's result compiled and as Python; with `outputs` ((length, dtype), ...), the
    zeroed arrays it writes into, which are then the result."""
    results = []
    for run in (kernel, kernel.py_func):
        arrays = [np.zeros(n, dtype) for n, dtype in outputs]
        value = run(*args, *arrays)
        results.append(tuple(arrays) if outputs else value)
    return results[0], results[1]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([-1, 0, 0, 0, 1]), min_size=1, max_size=60),
    st.data(),
    st.sampled_from([1.0, 0.5, 0.3]),
    st.sampled_from([1.0, 0.25]),
    st.sampled_from([0.0, 0.001, 0.00075]),
    st.sampled_from([0.0, 3e-4]),
    st.sampled_from([np.nan, 50.0]),
    st.sampled_from([np.nan, 5_000.0]),
    st.booleans(),
    st.booleans(),
)
def test_signal_path_compiled_equals_its_python(
    signal: list[int],
    data: st.DataObject,
    entry: float,
    exit_: float,
    fee: float,
    slip: float,
    min_notional: float,
    max_notional: float,
    on_close: bool,
    margin: bool,
) -> None:
    n = len(signal)
    prices = st.floats(1.0, 1000.0, allow_nan=False, allow_infinity=False)
    open_ = np.array(data.draw(st.lists(prices, min_size=n, max_size=n)))
    close = np.array(data.draw(st.lists(prices, min_size=n, max_size=n)))
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    contract = None
    if margin:
        rows = np.array(sorted(data.draw(st.lists(st.integers(0, n - 1), max_size=5))), np.int64)
        contract = signal_path.Contract(
            margin=True,
            shorts=True,
            multiplier=0.5,
            leverage=3.0,
            tier_max_notional=np.array([2_000.0, np.inf]),
            tier_max_leverage=np.array([5.0, 2.0]),
            maintenance_rate=np.array([0.01, 0.05]),
            maintenance_amount=np.array([0.0, 80.0]),
            maintenance_min_notional=np.array([0.0, 2_000.0]),
            maintenance_max_notional=np.array([2_000.0, np.inf]),
            liquidation_fee=0.0125,
            mark_open=open_,
            mark_high=high,
            mark_low=low,
            mark_close=close,
            funding_row=rows,
            funding_rate=np.full(len(rows), 0.001),
            funding_mark=close[rows],
        )
    args = (np.array(signal, dtype=np.int8), open_, close, high, low, entry, exit_, 10_000.0)
    knobs = (fee, slip, min_notional, max_notional, on_close, contract)
    compiled = signal_path.simulate(*args, *knobs)
    python = signal_path.simulate(*args, *knobs, compiled=False)
    for a, b in zip(compiled, python, strict=True):
        assert same(np.asarray(a), np.asarray(b))
    # Marking to market in the loop: the same record, and the equity and drawdown state the pass
    # over the cash and position it wrote gives.
    ts = np.arange(n, dtype=np.int64) * 60 * 10**9
    unit = close * 0.5 if margin else close
    for run in (True, False):
        marked = signal_path.simulate(*args, *knobs, ts=ts, unit_value=unit, compiled=run)._asdict()
        unmarked = (compiled if run else python)._asdict()
        for name, value in unmarked.items():
            if name not in ("equity", "deepest_drawdown", "longest_drawdown", "exposed_bars"):
                assert same(np.asarray(marked[name]), np.asarray(value)), name
        equity = np.zeros(n)
        none = np.zeros(0)
        profile = drawdown.mark_to_market(
            ts, marked["cash"], marked["position"], unit, none, equity, none, none
        )
        assert same(marked["equity"], equity)
        assert (marked["deepest_drawdown"], marked["longest_drawdown"]) == profile[:2]
        assert marked["exposed_bars"] == profile[2]


@settings(max_examples=60, deadline=None)
@given(fill_streams())
def test_round_trip_kernel_compiled_equals_its_python(fills: pl.DataFrame) -> None:
    codes = fills["instrument"].replace_strict({"A": 0, "B": 1, "C": 2}, return_dtype=pl.Int64)
    args = (
        codes.to_numpy(),
        (fills["side"] == "buy").to_numpy(),
        fills["price"].to_numpy(),
        fills["quantity"].to_numpy(),
        fills["fee"].to_numpy(),
        np.array([1.0, 2.0, 0.5]),
        np.array([0, 1], dtype=np.int64),
        np.array([1.5, -0.25]),
        np.array([2, 7], dtype=np.int64),
    )
    compiled = round_trips.group_round_trips(*args)
    python = round_trips.group_round_trips(*args, compiled=False)
    for a, b in zip(compiled, python, strict=True):
        assert same(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("decimals", [0, 2, 5])
def test_indicator_kernels_compiled_equal_their_python(decimals: int) -> None:
    rng = np.random.Generator(np.random.PCG64(decimals))
    prices = np.round(rng.uniform(10, 50_000, 5_000), decimals)
    assert same(
        np.asarray(indicators.grid_decimals(prices, 8)),
        np.asarray(indicators.grid_decimals.py_func(prices, 8)),
    )
    n = len(prices)
    (fast, *_), (fast_python, *_) = compiled_and_python(
        indicators.window_sums_in_ticks, prices, 17, 10**decimals, outputs=((n, np.float64),)
    )
    assert same(fast, fast_python)
    assert same(fast, reference_window_sums(prices, 17, 10**decimals))
    slow = reference_window_sums(prices, 40, 10**decimals)
    signal = compiled_and_python(
        indicators.crossover_signal, fast, 17, slow, 40, outputs=((n, np.int8),)
    )
    assert same(signal[0][0], signal[1][0])
    assert same(signal[0][0], reference_crossovers(fast, 17, slow, 40))
    # The fused loop converts ticks a block of bars at a time: these series span several blocks,
    # and one ends a bar past a block.
    for length in (n, 40 + 2 * 2048 + 1):
        fused = compiled_and_python(
            indicators.sma_cross_in_ticks,
            prices[:length],
            17,
            40,
            10**decimals,
            outputs=((length, np.int8),),
        )
        expected = reference_crossovers(fast[:length], 17, slow[:length], 40)
        assert same(fused[0][0], expected)
        assert same(fused[1][0], expected)


def reference_drawdown(ts: np.ndarray, values: np.ndarray) -> tuple[float, int]:
    peaks = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        deepest = float((values / peaks - 1.0).min())
    underwater = (values < peaks).astype(np.int8)
    if not underwater.any():
        return deepest, 0
    edges = np.diff(np.concatenate(([0], underwater, [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    recovered = np.where(ends < len(ts), ts[np.minimum(ends, len(ts) - 1)], ts[-1])
    return deepest, int((recovered - ts[starts - 1]).max())


equity_values = st.lists(
    st.one_of(
        st.sampled_from([0.0, 100.0, 99.0, 101.0, -5.0, np.nan]),
        st.floats(1.0, 200.0, allow_nan=False),
    ),
    min_size=1,
    max_size=50,
)


@settings(max_examples=300, deadline=None)
@given(equity_values, st.sampled_from([60, 3600]))
def test_drawdown_kernel_equals_the_numpy_code_it_replaced(values: list[float], step: int) -> None:
    v = np.array(values)
    ts = np.arange(len(v), dtype=np.int64) * step * 10**9
    expected = reference_drawdown(ts, v)
    for got in (drawdown.drawdown_profile(ts, v), drawdown.drawdown_profile.py_func(ts, v)):
        assert np.array_equal(got[0], expected[0], equal_nan=True)  # NaN's sign bit may differ
        assert got[1] == expected[1]


@given(st.lists(st.sampled_from([60, 60, 60, 120, 3600]), min_size=1, max_size=40))
def test_bar_interval_is_the_most_common_step(steps: list[int]) -> None:
    ts = np.concatenate(([0], np.cumsum(np.array(steps, dtype=np.int64) * 10**9)))
    unique, counts = np.unique(np.diff(ts), return_counts=True)
    assert bar_interval_ns(ts) == int(unique[np.argmax(counts)])


@settings(max_examples=100, deadline=None)
@given(equity_values, st.data())
def test_mark_to_market_equals_the_numpy_expressions(
    cash: list[float], data: st.DataObject
) -> None:
    n = len(cash)
    held = np.array(
        data.draw(st.lists(st.sampled_from([0.0, 0.5, 2.0, -1.5]), min_size=n, max_size=n))
    )
    close = np.array(data.draw(st.lists(st.floats(1.0, 100.0), min_size=n, max_size=n)))
    cash_a = np.array(cash)
    position_value = np.zeros(n)
    position_value += held * close
    equity = cash_a + position_value
    notional = np.zeros(n)
    notional += np.abs(held) * close
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = 100.0 * (equity / np.maximum.accumulate(equity) - 1.0)
    ts = np.arange(n, dtype=np.int64) * 60 * 10**9
    deepest, longest = reference_drawdown(ts, equity)
    for run in (drawdown.mark_to_market, drawdown.mark_to_market.py_func):
        got = [np.zeros(n) for _ in range(4)]
        profile = run(ts, cash_a, held, close, *got)
        assert same(got[0], position_value)
        assert same(got[1], equity)
        assert np.array_equal(got[2], pct, equal_nan=True)
        assert same(got[3], notional)
        assert np.array_equal(profile[0], deepest, equal_nan=True)
        assert profile[1] == longest
        assert profile[2] == int(np.count_nonzero(held))
        # The position value may be written over the positions themselves.
        in_place = held.copy()
        rest = [np.zeros(n) for _ in range(3)]
        assert run(ts, cash_a, in_place, close, in_place, *rest)[2] == profile[2]
        assert same(in_place, position_value)


def reference_excursions(
    long: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    price: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The per-trade Python loop the kernel replaced."""
    mae, mfe = np.zeros(len(first)), np.zeros(len(first))
    for k, (a, b) in enumerate(zip(first.tolist(), last.tolist(), strict=True)):
        if price[k] <= 0.0:
            continue
        lowest = float(low[a : b + 1].min())
        highest = float(high[a : b + 1].max())
        if long[k]:
            worst, best = lowest / price[k] - 1.0, highest / price[k] - 1.0
        else:
            worst, best = 1.0 - highest / price[k], 1.0 - lowest / price[k]
        mae[k] = min(100.0 * worst, 0.0)
        mfe[k] = max(100.0 * best, 0.0)
    return mae, mfe


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(1.0, 200.0), min_size=1, max_size=40).flatmap(
        lambda lows: st.tuples(
            st.just(lows),
            st.lists(st.floats(0.0, 5.0), min_size=len(lows), max_size=len(lows)),
            st.lists(
                st.tuples(
                    st.integers(0, len(lows) - 1),
                    st.integers(0, len(lows) - 1),
                    st.booleans(),
                    st.sampled_from([0.0, 50.0, 100.0, 150.0]),
                ),
                min_size=1,
                max_size=10,
            ),
        )
    )
)
def test_excursions_equal_the_per_trade_loop_they_replaced(
    case: tuple[list[float], list[float], list[tuple[int, int, bool, float]]],
) -> None:
    lows, spreads, spans = case
    low = np.array(lows)
    high = low + np.array(spreads)
    first = np.array([min(a, b) for a, b, _, _ in spans], dtype=np.int64)
    last = np.array([max(a, b) for a, b, _, _ in spans], dtype=np.int64)
    long = np.array([side for _, _, side, _ in spans])
    price = np.array([p for _, _, _, p in spans])
    ts = np.arange(len(low), dtype=np.int64) * 60
    mae, mfe, held = excursions(
        ["X"],
        np.zeros(len(first), np.int64),
        long,
        ts[first],
        ts[last],
        price,
        {"X": (ts, high, low)},
    )
    expected = reference_excursions(long, first, last, price, high, low)
    assert same(mae, expected[0])
    assert same(mfe, expected[1])
    assert np.array_equal(held, last - first)
    spans_out = compiled_and_python(
        round_trips.range_extremes, first, last, high, low, outputs=((len(first), float),) * 2
    )
    assert same(spans_out[0][0], spans_out[1][0]) and same(spans_out[0][1], spans_out[1][1])


@given(
    st.lists(st.integers(0, 50), min_size=0, max_size=30),
    st.lists(st.integers(-5, 60), min_size=0, max_size=30),
)
def test_counting_sorted_keys_equals_searchsorted(steps: list[int], keys: list[int]) -> None:
    ts = np.cumsum(np.array(steps, dtype=np.int64))
    ordered = np.sort(np.array(keys, dtype=np.int64))
    for got in compiled_and_python(
        round_trips.count_at_or_before, ts, ordered, outputs=((len(ordered), np.int64),)
    ):
        assert np.array_equal(got[0], np.searchsorted(ts, ordered, side="right"))
