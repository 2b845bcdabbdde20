"""Runs a `SignalPlan` on the compiled order path and assembles the same `RunResult` the event-driven
engine would (adr/0011): same frames, same statistics, same digest. It covers spot instruments on a
cash account and linear perpetuals on a margin account, isolated or cross (long, short, funding, mark
prices, liquidation); a run where an order would fill only in part stops with `Declined`, and the
engine makes it on the event path."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
import polars as pl

from backtester.compiled import signal_path
from backtester.config import RiskConfig, StatsConfig
from backtester.core.memory import columns
from backtester.data.bars import RepairReport
from backtester.domain.enums import BUY, SELL
from backtester.domain.instrument import Instrument, InstrumentKind, MarginMode, MarginTier
from backtester.domain.marks import MarkBars
from backtester.domain.messages import FundingRate
from backtester.domain.models import FeeModel, SlippageModel
from backtester.execution.fees import FixedRateFee, MakerTakerFee
from backtester.execution.slippage import FixedBpsSlippage, NoSlippage, VolumeShareSlippage
from backtester.metrics.stats import bar_interval_ns
from backtester.metrics.trades import FUNDING_SCHEMA, LIQUIDATION_TAG, FillColumns
from backtester.results import (
    UTC_NS,
    Books,
    DeferredFills,
    DeferredOrders,
    Later,
    Marked,
    RunResult,
    build_result,
    unit_values,
)
from backtester.risk import rules
from backtester.strategy.signal import SignalPlan

_STATUS = {
    signal_path.FILLED: "filled",
    signal_path.DENIED: "denied",
    signal_path.CANCELED: "canceled",
}

_STOPPED = {
    signal_path.STOPPED_FILL_RESTS: "a fill would leave the rest of an order resting for later bars",
    signal_path.STOPPED_VOLUME_CAPPED: "a bar's volume share would fill an order only in part",
}


class Declined(Exception):
    """The compiled path met what it does not model; the run is for the event path."""


def unsupported(
    streams: int,
    instrument: Instrument,
    fees: FeeModel,
    slippage: SlippageModel,
    risk: RiskConfig,
    *,
    account: str = "cash",
    shorts: bool = False,
) -> str | None:
    """Why this run cannot take the compiled order path, or None if it can. (A short on a cash
    account is refused before a mode is chosen.)"""
    if streams != 1:
        return "it runs on several streams"
    if account == "margin" and instrument.kind is not InstrumentKind.PERPETUAL:
        return "a dated future is not compiled (its expiry settles on the event path)"
    if type(fees) not in (FixedRateFee, MakerTakerFee):
        return f"fee model {type(fees).__name__} is not compiled"
    if type(slippage) not in (NoSlippage, FixedBpsSlippage, VolumeShareSlippage):
        return f"slippage model {type(slippage).__name__} is not compiled"
    limited = risk.max_position_quantity is not None or risk.max_position_notional is not None
    bounded = instrument.min_quantity is not None or instrument.max_quantity is not None
    if limited and risk.on_limit == "cap" and bounded:
        # A capped order is for a quantity, which the instrument's quantity bounds would check.
        return "a max-position limit that caps orders, on an instrument with quantity bounds, is not compiled"
    return None


def run_plan(
    plan: SignalPlan,
    frame: pl.DataFrame,
    instrument: Instrument,
    fees: FeeModel,
    slippage: SlippageModel,
    *,
    initial_cash: float,
    trade_on_close: bool,
    strategy: str,
    params: msgspec.Struct,
    seed: int,
    repairs: list[RepairReport],
    stats: StatsConfig,
    account: str = "cash",
    marks: MarkBars | None = None,
    funding: Sequence[FundingRate] = (),
    risk: RiskConfig | None = None,
) -> RunResult:
    """`marks`: the mark over each bar (margin accounts; default the bars' own prices);
    `funding`: the instrument's funding events inside the run, in time order; `risk`: the
    position limits (which deny)."""
    limits = risk or RiskConfig()
    ts = frame["ts"].to_numpy()
    # The event path runs on close times (adr/0020): an order is submitted at its bar's close, and
    # an order not filled is closed at the close of the bar that ends it; a fill is stamped with the
    # open time of the bar it executes on. A funding is paid after the bars closed by its time.
    # (A bar is known `interval` after it opens; taken at the rows that need it, not as a column
    # as long as the series.)
    interval = bar_interval_ns(ts)
    open_, high, low, close = (frame[c].to_numpy() for c in ("open", "high", "low", "close"))
    margin = account == "margin"
    mark = marks or MarkBars(open_, high, low, close)
    funding_ts = np.array([f.ts_event for f in funding], dtype=np.int64)
    contract = (
        signal_path.Contract(
            margin=True,
            shorts=plan.short,
            cross=instrument.margin_mode is MarginMode.CROSS,
            multiplier=instrument.contract_size,
            leverage=instrument.leverage,
            tier_max_notional=np.array([t.max_notional for t in instrument.margin_tiers]),
            tier_max_leverage=np.array([t.max_leverage for t in instrument.margin_tiers]),
            maintenance_rate=np.array([t.maintenance_rate for t in _tiers(instrument)]),
            maintenance_amount=np.array([t.maintenance_amount for t in _tiers(instrument)]),
            maintenance_min_notional=np.array([t.min_notional for t in _tiers(instrument)]),
            maintenance_max_notional=np.array([t.max_notional for t in _tiers(instrument)]),
            liquidation_fee=instrument.liquidation_fee,
            mark_open=mark.open,
            mark_high=mark.high,
            mark_low=mark.low,
            mark_close=mark.close,
            # Before the first bar that closes after it: ts + interval > funding time.
            funding_row=np.searchsorted(ts, funding_ts - interval, side="right"),
            funding_rate=np.array([f.rate for f in funding]),
            funding_mark=np.array([f.mark_price for f in funding]),
        )
        if margin
        else None
    )
    multipliers = {instrument.symbol: instrument.contract_size} if margin else None
    sim = signal_path.simulate(
        plan.signal,
        open_,
        close,
        high,
        low,
        plan.entry_fraction,
        plan.exit_fraction,
        initial_cash,
        _taker_rate(fees),
        _slip(slippage),
        _limit(instrument.min_notional),
        _limit(instrument.max_notional),
        trade_on_close,
        contract,
        tick_size=instrument.tick_size,
        lot_size=instrument.lot_size,
        **_volume_share(slippage, frame),
        max_position_quantity=_limit(limits.max_position_quantity),
        max_position_notional=_limit(limits.max_position_notional),
        cap_limits=limits.on_limit == "cap",
        # The loop marks the account to market after each bar, as build_result would have.
        ts=ts,
        unit_value=unit_values({instrument.symbol: mark.close}, multipliers)[instrument.symbol],
        # Without huge-page advice, as the equity frame's columns (adr/0025).
        allocate=columns,
    )
    if sim.stopped != signal_path.RAN_TO_THE_END:
        raise Declined(f"{_STOPPED[sim.stopped]} (bar {sim.stopped_row})")
    symbol = instrument.symbol
    buys = sim.order_side > 0
    kinds = sim.order_kind
    # The plan's orders are numbered 1, 2, ... and the venue's liquidations -1, -2, ...
    by_venue = kinds == signal_path.LIQUIDATION
    order_ids = (
        np.where(by_venue, -np.cumsum(by_venue), np.cumsum(~by_venue))
        if sim.liquidations
        else np.arange(1, len(kinds) + 1)  # the same numbers: no order is the venue's
    )
    # The fills frame too is built when first read: the round trips and the digest take its columns.
    fill_ts = ts[sim.fill_row]
    fill_ids = order_ids[sim.fill_order]
    fill_buys = buys[sim.fill_order]
    fills_frame = Later(
        functools.partial(
            _fills_frame,
            plan,
            symbol,
            fill_ts,
            fill_ids,
            fill_buys,
            kinds[sim.fill_order],
            sim.fill_price,
            sim.fill_quantity,
            sim.fill_fee,
            sim.fill_leaves,
        )
    )
    fills = DeferredFills(
        fills_frame,
        FillColumns(
            ts=fill_ts,
            order_id=fill_ids,
            symbols=[symbol],
            codes=np.zeros(len(fill_ts), dtype=np.int64),
            buy=fill_buys,
            price=sim.fill_price,
            quantity=sim.fill_quantity,
            fee=sim.fill_fee,
            tags=functools.partial(_tags, fills_frame),
        ),
    )
    # The orders frame is built when first read: a run's statistics need only how many orders there
    # were and whether any was denied. It keeps the per-order record and the input's own times and
    # closes (which the result keeps with its bars), not the loop's bar-long columns.
    empty = np.zeros(0)
    orders = DeferredOrders(
        functools.partial(
            _orders_frame,
            plan,
            sim._replace(cash=empty, position=empty, cost_basis=empty, funding=empty, equity=empty),
            symbol,
            instrument,
            margin,
            limits,
            order_ids,
            ts,
            close,
            interval,
        ),
        len(order_ids),
        bool((sim.order_outcome == signal_path.DENIED).any()),
    )
    books = (
        Books(sim.cash, {symbol: sim.position}, {symbol: sim.cost_basis}, sim.funding)
        if margin
        else Books(sim.cash, {symbol: sim.position})
    )
    return build_result(
        strategy=strategy,
        params=params,
        seed=seed,
        fills=fills,
        orders=orders,
        timeline=ts,
        books=books,
        marks={symbol: mark.close},
        closes={symbol: close},
        initial_cash=initial_cash,
        fees_paid=sim.fees_paid,
        intrabar_decisions=sim.path_decided_bars,
        repairs=repairs,
        stats=stats,
        account=account,
        multipliers=multipliers,
        funding=_funding_frame(symbol, funding, sim) if margin else None,
        liquidations=sim.liquidations,
        ranges={symbol: (ts, high, low)},
        fill_rows=sim.fill_row,
        positions_given_away=True,
        interval=interval,
        marked=Marked(
            sim.equity,
            sim.deepest_drawdown,
            sim.longest_drawdown,
            sim.exposed_bars,
            sim.peak_equity,
        ),
    )


def _fills_frame(
    plan: SignalPlan,
    symbol: str,
    ts: np.ndarray,
    order_id: np.ndarray,
    buy: np.ndarray,
    kind: np.ndarray,
    price: np.ndarray,
    quantity: np.ndarray,
    fee: np.ndarray,
    leaves: np.ndarray,
) -> pl.DataFrame:
    """`RunResult.fills` from the loop's per-fill record (`ts`: the open time of each fill's bar;
    `order_id`, `buy`, `kind`: its order's)."""
    return pl.DataFrame(
        {
            "ts": ts,
            "order_id": order_id,
            "buy": buy,
            "kind": kind,
            "price": price,
            "quantity": quantity,
            "fee": fee,
            "leaves": leaves,
        }
    ).select(
        # One expression pass for the constant and derived columns: each eager column would
        # cost a query of its own.
        pl.col("ts").cast(UTC_NS),
        "order_id",
        pl.lit(symbol).alias("instrument"),
        _either("buy", "buy", "sell").alias("side"),
        "price",
        "quantity",
        "fee",
        pl.lit("taker").alias("liquidity"),
        pl.col("leaves").alias("leaves_quantity"),
        _tag(plan).alias("tag"),
    )


def _tags(fills: Later) -> pl.Series:
    return fills()["tag"]


def _orders_frame(
    plan: SignalPlan,
    sim: signal_path.Simulated,
    symbol: str,
    instrument: Instrument,
    margin: bool,
    limits: RiskConfig,
    order_ids: np.ndarray,
    ts: np.ndarray,
    close: np.ndarray,
    interval: int,
) -> pl.DataFrame:
    """`RunResult.orders` from the loop's per-order record; `ts`, `close`: the bars' open times and
    closes (the input's own columns, which the result keeps with its bars anyway)."""
    submitted_ts = ts[sim.order_row]
    closed_ts = ts[sim.order_closed_row]
    submitted_close = close[sim.order_row]
    buys = sim.order_side > 0
    kinds = sim.order_kind
    by_venue = kinds == signal_path.LIQUIDATION
    filled = sim.order_filled_quantity != 0.0
    # NaN marks "no fill" and becomes null, as the event path's None does.
    avg_price = np.divide(
        sim.order_filled_notional,
        sim.order_filled_quantity,
        out=np.full(len(buys), np.nan),
        where=filled,
    )
    reasons, codes = _reasons(sim, instrument, margin, limits, submitted_close)
    return pl.DataFrame(
        {
            "order_id": order_ids,
            "ts_submitted": submitted_ts + interval,
            "buy": buys,
            "kind": kinds,
            "status": sim.order_outcome,
            "reason": reasons,
            "code": codes,
            "filled_quantity": sim.order_filled_quantity,
            # NaN: a fraction order (null); a capped order's quantity, or a liquidation's.
            "quantity": pl.Series(
                np.where(by_venue, sim.order_filled_quantity, sim.order_quantity),
                nan_to_null=True,
            ),
            "avg_fill_price": pl.Series(avg_price, nan_to_null=True),
            "ts_closed": np.where(
                sim.order_outcome == signal_path.FILLED,
                closed_ts,
                closed_ts + interval,
            ),
        }
    ).select(
        "order_id",
        pl.col("ts_submitted").cast(UTC_NS),
        pl.lit(symbol).alias("instrument"),
        _either("buy", "buy", "sell").alias("side"),
        pl.lit("market").alias("type"),
        pl.lit("gtc").alias("time_in_force"),
        "quantity",
        # A fraction order's fraction; none for a capped order or a liquidation (for a quantity).
        pl.when(pl.col("quantity").is_not_null())
        .then(pl.lit(None, dtype=pl.Float64))
        .when(pl.col("kind") == signal_path.ENTRY)
        .then(pl.lit(plan.entry_fraction))
        .otherwise(pl.lit(plan.exit_fraction))
        .alias("fraction"),
        pl.lit(None, dtype=pl.Float64).alias("limit_price"),
        pl.lit(None, dtype=pl.Float64).alias("stop_price"),
        _tag(plan).alias("tag"),
        pl.col("status").replace_strict(_STATUS, return_dtype=pl.String),
        "reason",
        "code",
        "filled_quantity",
        "avg_fill_price",
        pl.col("ts_closed").cast(UTC_NS),
    )


def _tiers(instrument: Instrument) -> tuple[MarginTier, ...]:
    return instrument.margin_tiers or (instrument.tier_for(0.0),)


def _funding_frame(
    symbol: str, funding: Sequence[FundingRate], sim: signal_path.Simulated
) -> pl.DataFrame:
    """The payments as the recorder keeps them (`RunResult.funding`)."""
    paid = sim.funding_index
    return pl.DataFrame(
        {
            "ts": np.array([funding[k].ts_event for k in paid.tolist()], dtype=np.int64),
            "instrument": [symbol] * len(paid),
            "rate": np.array([funding[k].rate for k in paid.tolist()], dtype=np.float64),
            "mark_price": np.array([funding[k].mark_price for k in paid.tolist()]),
            "quantity": sim.funding_quantity,
            "amount": sim.funding_amount,
            "fills_before": sim.funding_fills_before,
        },
        schema={**FUNDING_SCHEMA, "ts": pl.Int64},
    ).with_columns(pl.col("ts").cast(UTC_NS))


def _taker_rate(fees: FeeModel) -> float:
    if isinstance(fees, MakerTakerFee):
        return fees.taker
    assert isinstance(fees, FixedRateFee)
    return fees.rate


def _slip(slippage: SlippageModel) -> float:
    # FixedBpsSlippage moves a buy to price * (1 + bps * 1e-4) and a sell to price * (1 - bps * 1e-4);
    # no slippage is the same with 0 (price * 1.0 is price exactly).
    return slippage.bps * 1e-4 if isinstance(slippage, FixedBpsSlippage) else 0.0


def _volume_share(slippage: SlippageModel, frame: pl.DataFrame) -> dict[str, Any]:
    if not isinstance(slippage, VolumeShareSlippage):
        return {}
    return {
        "volume": frame["volume"].to_numpy(),
        "volume_limit": slippage.volume_limit,
        "price_impact": slippage.price_impact,
    }


def _limit(value: float | None) -> float:
    return math.nan if value is None else value


def _either(mask: str, yes: str | float, no: str | float) -> pl.Expr:
    return pl.when(pl.col(mask)).then(pl.lit(yes)).otherwise(pl.lit(no))


def _tag(plan: SignalPlan) -> pl.Expr:
    """An order's tag from its kind (`signal_path.ENTRY`, ...)."""
    return (
        pl.when(pl.col("kind") == signal_path.ENTRY)
        .then(pl.lit(plan.entry_tag))
        .when(pl.col("kind") == signal_path.EXIT)
        .then(pl.lit(plan.exit_tag))
        .otherwise(pl.lit(LIQUIDATION_TAG))
    )


def _reasons(
    sim: signal_path.Simulated,
    instrument: Instrument,
    margin: bool,
    risk: RiskConfig,
    prices: np.ndarray,
) -> tuple[pl.Series, pl.Series]:
    """The messages the event-driven modules write (risk.rules, the venue), for the few orders that
    did not fill, and the codes of risk's denials (`backtester.risk.engine`: stats count by them)."""
    codes = sim.order_reason
    reasons = pl.repeat("", len(codes), eager=True)
    denials = pl.repeat("", len(codes), eager=True)
    unfilled = np.flatnonzero(codes)
    if len(unfilled):
        why = [
            _reason(
                int(codes[k]),
                (float(sim.order_value[k]), float(sim.order_second_value[k])),
                "buy" if sim.order_side[k] > 0 else "sell",
                instrument,
                margin,
                risk,
                float(prices[k]),
            )
            for k in unfilled
        ]
        reasons = reasons.scatter(unfilled, [message for message, _ in why])
        denials = denials.scatter(unfilled, [code for _, code in why])
    return reasons, denials


def _reason(
    code: int,
    values: tuple[float, float],
    side: str,
    instrument: Instrument,
    margin: bool,
    risk: RiskConfig,
    price: float,
) -> tuple[str, str]:
    """(reason, denial code: empty for the venue's cancels). `values`: what the denial quotes;
    `price`: the last price when the order was submitted, which the risk engine checked it at."""
    value = values[0]
    money = "margin" if margin else "cash"
    if code == signal_path.DENIED_NO_CASH:
        return f"insufficient {money}: available {value:.8g}", f"insufficient_{money}"
    if code == signal_path.DENIED_BALANCE:
        reason = rules.check_balance(
            BUY if side == "buy" else SELL, value, value, value, values[1], 0.0, None, margin
        )
        assert reason is not None
        return reason, f"insufficient_{money}"
    if code == signal_path.DENIED_NO_ROOM:
        return f"position {value:.8g} is at its limit: no room for a {side}", "max_position"
    if code == signal_path.CANCELED_CAPPED_AT_FILL:
        return f"insufficient {money} at fill", ""
    if code == signal_path.DENIED_LEVERAGE:
        reason = rules.check_bracket_leverage(value, instrument)
        assert reason is not None
        return reason, "leverage"
    if code in (signal_path.DENIED_BELOW_MIN_NOTIONAL, signal_path.DENIED_ABOVE_MAX_NOTIONAL):
        reason = rules.check_notional(value, instrument)
        assert reason is not None
        return reason, "notional"
    if code == signal_path.DENIED_MAX_POSITION:
        reason = rules.check_max_position(
            value, price, risk.max_position_quantity, risk.max_position_notional
        )
        assert reason is not None
        return reason, "max_position"
    if code == signal_path.CANCELED_SIZED_TO_ZERO:
        return "order sized to zero at fill", ""
    if code == signal_path.CANCELED_END_OF_DATA:
        return "end of data", ""
    if code == signal_path.CANCELED_LIQUIDATED:
        return "position liquidated", ""
    raise ValueError(f"unknown order outcome code {code}")
