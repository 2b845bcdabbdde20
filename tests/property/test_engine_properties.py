"""Properties of whole runs over random valid bars and random order streams, and codec round trips.

Each example builds a few bars (high >= max(open, close), low <= min(open, close), prices > 0) on a
half-unit grid so that limit and stop levels drawn from the same grid touch, gap and miss; a scripted
strategy submits random market / limit / stop / stop-limit orders (buys and sells, quantities and
fractions, GTC and IOC) and cancels random earlier ones; fee, slippage, instrument grid, intrabar
policy and trade-on-close are drawn too. The run goes through the real composition root, observed
(see `tests.engine_support.Observed`), and the books are replayed from the fills.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Union
from unittest import mock

import msgspec
import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from backtester import (
    Backtest,
    FixedBpsSlippage,
    FixedRateFee,
    Instrument,
    MakerTakerFee,
    NoSlippage,
    Strategy,
    TimeInForce,
    VolumeShareSlippage,
)
from backtester.domain.enums import Liquidity, OrderStatus
from backtester.domain.messages import Message
from backtester.engine import engine
from tests.engine_support import (
    BAR_MS,
    NS_PER_MS,
    T0_MS,
    Action,
    Observed,
    bars_frame,
    scripted,
)

PROPERTY_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
SYMBOL = "BTC/USDT"
CASH = 1_000.0


@pytest.fixture(autouse=True, scope="module")
def _no_full_gc_per_run() -> Iterator[None]:
    """Each run ends with a full `gc.collect()`, which in a test process costs several times a small
    run; garbage collection cannot change results, so these many tiny runs skip it."""
    with mock.patch.object(engine, "gc_paused", contextlib.nullcontext):
        yield


# --- generators -----------------------------------------------------------------------------------

half_units = st.integers(min_value=160, max_value=240).map(lambda k: k / 2)  # 80.0 .. 120.0


@st.composite
def bar_rows(draw: st.DrawFn) -> list[tuple[float, float, float, float, float]]:
    n = draw(st.integers(min_value=2, max_value=8))
    rows = []
    for _ in range(n):
        open_, close = draw(half_units), draw(half_units)
        up = draw(st.sampled_from([0.0, 0.5, 1.0, 3.0]))
        down = draw(st.sampled_from([0.0, 0.5, 1.0, 3.0]))
        volume = draw(st.sampled_from([0.0, 2.0, 8.0, 8.0, 50.0, 1000.0]))
        rows.append((open_, max(open_, close) + up, min(open_, close) - down, close, volume))
    return rows


@st.composite
def submit_actions(draw: st.DrawFn) -> Action:
    buy = draw(st.sampled_from([True, True, True, False, False]))
    kind = draw(st.sampled_from(["market", "limit", "stop", "stop_limit"]))
    limit = draw(half_units) if kind in ("limit", "stop_limit") else None
    stop = draw(half_units) if kind in ("stop", "stop_limit") else None
    tif = draw(st.sampled_from([TimeInForce.GTC, TimeInForce.IOC]))
    if draw(st.booleans()):
        sizing: dict[str, Any] = {"fraction": draw(st.sampled_from([0.1, 0.25, 0.5, 1.0]))}
    else:
        sizing = {"quantity": draw(st.sampled_from([0.004, 0.3, 1.0, 2.5, 4.0, 12.0]))}

    def submit(s: Strategy[Any]) -> None:
        side = s.buy if buy else s.sell
        s.ids.append(side(limit=limit, stop=stop, time_in_force=tif, **sizing))  # type: ignore[attr-defined]

    return submit


@st.composite
def cancel_actions(draw: st.DrawFn) -> Action:
    pick = draw(st.integers(min_value=0, max_value=50))

    def cancel(s: Strategy[Any]) -> None:
        ids: list[int] = s.ids  # type: ignore[attr-defined]
        s.cancel(ids[pick % len(ids)] if ids else 1)

    return cancel


@st.composite
def scripts(draw: st.DrawFn, bars: int) -> dict[int, list[Action]]:
    script: dict[int, list[Action]] = {}
    for index in range(bars):
        script[index] = draw(
            st.lists(
                st.one_of(submit_actions(), submit_actions(), cancel_actions()),
                max_size=3,
            )
        )
    return script


fee_models = st.one_of(
    st.builds(FixedRateFee, rate=st.sampled_from([0.0, 0.001, 0.01])),
    st.builds(
        MakerTakerFee, maker=st.sampled_from([0.0, 0.0002]), taker=st.sampled_from([0.0, 0.001])
    ),
)
slippage_models = st.sampled_from(["none", "bps", "volume", "volume"]).flatmap(
    lambda kind: {
        "none": st.just(NoSlippage()),
        "bps": st.builds(FixedBpsSlippage, bps=st.sampled_from([0.0, 5.0, 50.0])),
        "volume": st.builds(
            VolumeShareSlippage,
            volume_limit=st.sampled_from([0.05, 0.25, 1.0]),
            price_impact=st.sampled_from([0.0, 0.1, 0.5]),
        ),
    }[kind]
)
instruments = st.sampled_from(
    [
        Instrument(SYMBOL),
        Instrument(SYMBOL, tick_size=0.5, lot_size=0.01),
        Instrument(SYMBOL, tick_size=0.01, lot_size=0.001, min_notional=5.0, max_notional=900.0),
    ]
)


@st.composite
def runs(draw: st.DrawFn) -> dict[str, Any]:
    rows = draw(bar_rows())
    return {
        "rows": rows,
        "script": draw(scripts(len(rows))),
        "fees": draw(fee_models),
        "slippage": draw(slippage_models),
        "instrument": draw(instruments),
        "intrabar": draw(st.sampled_from(["ohlc", "pessimistic"])),
        "trade_on_close": draw(st.booleans()),
    }


_INSTANCES: list[Any] = []


def _strategy_with_ids(script: dict[int, list[Action]]) -> type[Strategy[Any]]:
    """The scripted strategy, keeping the ids it submitted; its latest instance is `_INSTANCES[-1]`."""
    base = scripted(script)

    class WithIds(base):  # type: ignore[misc, valid-type]
        def on_start(self) -> None:
            super().on_start()
            self.ids: list[int] = []
            _INSTANCES[:] = [self]

    return WithIds


# --- the properties -------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(runs())
def test_random_order_streams_keep_books_balanced_and_answer_every_order_once(
    case: dict[str, Any],
) -> None:
    rows = case["rows"]
    fees = case["fees"]
    backtest = Backtest(
        bars_frame(rows),
        _strategy_with_ids(case["script"]),
        cash=CASH,
        fees=fees,
        slippage=case["slippage"],
        instrument=case["instrument"],
        intrabar=case["intrabar"],
        trade_on_close=case["trade_on_close"],
    )
    seen = Observed(backtest.engine())
    result = seen.engine.run()
    venue, ledger, recorder = seen.venue, seen.ledger, seen.recorder

    fills = result.fills.with_columns(pl.col("ts").dt.epoch("ns"))
    equity = result.equity.with_columns(pl.col("ts").dt.epoch("ns"))
    closes = [r[3] for r in rows]

    # Replay the books from the fills, in order: cash, position, and their state after each bar.
    cash, position = CASH, 0.0
    booked: dict[int, tuple[float, float]] = {}
    for fill in fills.iter_rows(named=True):
        notional = fill["quantity"] * fill["price"]
        assert fill["quantity"] > 0.0
        assert fill["fee"] >= 0.0
        assert fill["fee"] == fees.fee(notional, Liquidity(fill["liquidity"]))
        if fill["side"] == "buy":
            cash -= notional + fill["fee"]
            position += fill["quantity"]
        else:
            cash += notional - fill["fee"]
            position -= fill["quantity"]
        assert cash >= 0.0, "spot cash went negative"
        assert position >= 0.0, "spot position went short"
        booked[fill["ts"]] = (cash, position)

    # At every bar: equity = cash + position value, with cash and position those of the fills so far.
    state = (CASH, 0.0)
    for i, (ts, cash_i, value_i, equity_i) in enumerate(
        equity.select("ts", "cash", "position_value", "equity").iter_rows()
    ):
        state = booked.get(ts, state)
        assert equity_i == cash_i + value_i
        assert cash_i == state[0]
        assert value_i == state[1] * closes[i]
    assert equity.height == len(rows)

    # Position equals the sum of signed fills; venue and ledger agree with it and with each other.
    signed = 0.0
    for side, quantity in fills.select("side", "quantity").iter_rows():
        signed += quantity if side == "buy" else -quantity
    books, venue_books = ledger.account, venue.account
    assert books.quantities[SYMBOL] == books.positions[SYMBOL].quantity == signed == position
    assert venue_books.quantities == books.quantities
    assert venue_books.cash == books.cash == cash
    assert books.fees_paid == result.stats["fees_paid"] >= 0.0

    # Every order the strategy submitted got exactly one terminal answer; nothing is left open.
    (strategy,) = _INSTANCES[-1:]
    submitted = set(strategy.ids)
    assert set(recorder.orders) == submitted
    assert {order_id: n for order_id, n in seen.terminal_answers.items()} == dict.fromkeys(
        submitted, 1
    )
    assert all(record.terminal_events == 1 for record in recorder.orders.values())
    assert all(OrderStatus(s).is_terminal for s in result.orders["status"])
    # Coverage, shown by `pytest --hypothesis-show-statistics`.
    for status in sorted(set(result.orders["status"])):
        event(f"some order {status}")
    event(f"partial fills: {(fills['leaves_quantity'] > 0).any()}")

    # Filled quantities per order add up; limit (maker) fills are never worse than the limit.
    filled: dict[int, float] = {}
    for order_id, quantity in fills.select("order_id", "quantity").iter_rows():
        filled[order_id] = filled.get(order_id, 0.0) + quantity
    for row in result.orders.iter_rows(named=True):
        assert row["filled_quantity"] == filled.get(row["order_id"], 0.0)
        if row["status"] == "filled":
            assert row["filled_quantity"] > 0.0
    limits = dict(result.orders.select("order_id", "limit_price").iter_rows())
    for fill in fills.filter(liquidity="maker").iter_rows(named=True):
        limit = limits[fill["order_id"]]
        assert limit is not None
        assert fill["price"] <= limit if fill["side"] == "buy" else fill["price"] >= limit

    # No look-ahead: an order is placed at its bar's close and fills on a bar that opens then or
    # later (trade-on-close market orders: at the close of the placing bar, stamped with its open);
    # without slippage, inside the range of the bar it fills on.
    orders = result.orders.with_columns(pl.col("ts_submitted").dt.epoch("ns"))
    placed = dict(orders.select("order_id", "ts_submitted").iter_rows())
    kinds = dict(orders.select("order_id", "type").iter_rows())
    for fill in fills.iter_rows(named=True):
        bar = rows[(fill["ts"] // NS_PER_MS - T0_MS) // BAR_MS]
        same_bar_close = case["trade_on_close"] and kinds[fill["order_id"]] == "market"
        if same_bar_close and fill["ts"] + BAR_MS * NS_PER_MS == placed[fill["order_id"]]:
            if isinstance(case["slippage"], NoSlippage):
                assert fill["price"] == bar[3]
        else:
            assert fill["ts"] >= placed[fill["order_id"]]
            if isinstance(case["slippage"], NoSlippage):
                assert bar[2] <= fill["price"] <= bar[1]


@settings(max_examples=25, deadline=None)
@given(runs(), st.integers(min_value=0, max_value=2**32))
def test_same_inputs_and_seed_give_the_same_digest(case: dict[str, Any], seed: int) -> None:
    def run() -> str:
        return (
            Backtest(
                bars_frame(case["rows"]),
                _strategy_with_ids(case["script"]),
                cash=CASH,
                fees=case["fees"],
                slippage=case["slippage"],
                instrument=case["instrument"],
                intrabar=case["intrabar"],
                trade_on_close=case["trade_on_close"],
                seed=seed,
            )
            .run()
            .digest
        )

    assert run() == run()


# --- codec round trips ----------------------------------------------------------------------------


def _message_types() -> list[type[Message]]:
    found: list[type[Message]] = []
    pending = list(Message.__subclasses__())
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


MESSAGE_TYPES = _message_types()
ANY_MESSAGE = Union[tuple(MESSAGE_TYPES)]  # type: ignore[valid-type]  # noqa: UP007 - built at runtime
JSON_ENCODER, MSGPACK_ENCODER = msgspec.json.Encoder(), msgspec.msgpack.Encoder()
JSON_DECODER = msgspec.json.Decoder(ANY_MESSAGE)
MSGPACK_DECODER = msgspec.msgpack.Decoder(ANY_MESSAGE)


def _values_for(info: msgspec.inspect.Type) -> st.SearchStrategy[Any]:
    """A hypothesis strategy for any value of a msgspec type, from its type info."""
    if isinstance(info, msgspec.inspect.IntType):
        return st.integers(min_value=-(2**63), max_value=2**63 - 1)
    if isinstance(info, msgspec.inspect.FloatType):
        return st.floats(allow_nan=False, allow_infinity=False)
    if isinstance(info, msgspec.inspect.StrType):
        return st.text(max_size=12)
    if isinstance(info, msgspec.inspect.BoolType):
        return st.booleans()
    if isinstance(info, msgspec.inspect.NoneType):
        return st.none()
    if isinstance(info, msgspec.inspect.EnumType):
        return st.sampled_from(list(info.cls))
    if isinstance(info, msgspec.inspect.UnionType):
        return st.one_of(*[_values_for(t) for t in info.types])
    if isinstance(info, msgspec.inspect.StructType):
        return st.builds(info.cls, **{field.name: _values_for(field.type) for field in info.fields})
    if isinstance(info, msgspec.inspect.VarTupleType):
        return st.lists(_values_for(info.item_type), max_size=3).map(tuple)
    raise TypeError(f"no value generator for {info!r}: extend _values_for")


any_message = st.one_of(*[_values_for(msgspec.inspect.type_info(cls)) for cls in MESSAGE_TYPES])


def test_message_union_covers_every_command_and_event() -> None:
    names = {cls.__name__ for cls in MESSAGE_TYPES}
    assert names >= {
        "Bar",
        "SubmitOrder",
        "CancelOrder",
        "OrderAccepted",
        "OrderDenied",
        "OrderFilled",
        "OrderCanceled",
        "OrderExpired",
        "OrderCancelRejected",
        "PositionChanged",
        "AccountState",
    }


@settings(max_examples=300, deadline=None)
@given(any_message)
def test_every_message_round_trips_through_json_and_msgpack_via_the_tagged_union(
    message: Message,
) -> None:
    encoded = JSON_ENCODER.encode(message)
    assert msgspec.json.decode(encoded)["kind"] == type(message).__name__
    from_json = JSON_DECODER.decode(encoded)
    from_msgpack = MSGPACK_DECODER.decode(MSGPACK_ENCODER.encode(message))
    assert type(from_json) is type(message) is type(from_msgpack)
    assert from_json == message
    assert from_msgpack == message
