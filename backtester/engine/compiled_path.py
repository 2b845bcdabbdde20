"""Runs a `SignalPlan` on the compiled order path and assembles the same `RunResult` the event-driven
engine would (adr/0011): same frames, same statistics, same digest."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import polars as pl

from backtester.compiled import signal_path
from backtester.config import RiskConfig, StatsConfig
from backtester.data.bars import RepairReport
from backtester.domain.instrument import Instrument
from backtester.domain.models import FeeModel, SlippageModel
from backtester.execution.fees import FixedRateFee, MakerTakerFee
from backtester.execution.slippage import FixedBpsSlippage, NoSlippage
from backtester.metrics.stats import bar_interval_ns
from backtester.results import UTC_NS, Books, RunResult, build_result
from backtester.strategy.signal import SignalPlan

# The denial codes risk gives the same outcomes (`backtester.risk.engine`).
_CODES = {
    signal_path.DENIED_NO_CASH: "insufficient_cash",
    signal_path.DENIED_BELOW_MIN_NOTIONAL: "notional",
    signal_path.DENIED_ABOVE_MAX_NOTIONAL: "notional",
}

_STATUS = {
    signal_path.FILLED: "filled",
    signal_path.DENIED: "denied",
    signal_path.CANCELED: "canceled",
}


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
    """Why this run cannot take the compiled order path, or None if it can."""
    if streams != 1:
        return "it runs on several streams"
    if account != "cash":
        return "a margin account is not compiled"
    if shorts:
        return "shorts are not compiled"
    if instrument.tick_size is not None or instrument.lot_size is not None:
        return "the instrument has a tick or lot grid"
    if type(fees) not in (FixedRateFee, MakerTakerFee):
        return f"fee model {type(fees).__name__} is not compiled"
    if type(slippage) not in (NoSlippage, FixedBpsSlippage):
        return f"slippage model {type(slippage).__name__} is not compiled"
    if risk.max_position_quantity is not None or risk.max_position_notional is not None:
        return "a max-position risk limit is set"
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
) -> RunResult:
    ts = frame["ts"].to_numpy()
    # The event path runs on close times (adr/0020): an order is submitted at its bar's close, and
    # an order not filled is closed at the close of the bar that ends it; a fill is stamped with the
    # open time of the bar it executes on.
    known_at = ts + bar_interval_ns(ts)
    close = frame["close"].to_numpy()
    (
        order_row,
        order_side,
        order_status,
        order_reason,
        order_value,
        order_close_row,
        order_filled_qty,
        order_filled_notional,
        fill_order,
        fill_row,
        fill_price,
        fill_qty,
        fill_fee,
        cash,
        position,
        fees_paid,
    ) = signal_path.simulate(
        plan.signal,
        frame["open"].to_numpy(),
        close,
        plan.entry_fraction,
        plan.exit_fraction,
        initial_cash,
        _taker_rate(fees),
        _slip(slippage),
        _limit(instrument.min_notional),
        _limit(instrument.max_notional),
        trade_on_close,
    )
    symbol = instrument.symbol
    buys = order_side > 0
    fills = pl.DataFrame(
        {
            "ts": ts[fill_row],
            "order_id": fill_order + 1,
            "buy": buys[fill_order],
            "price": fill_price,
            "quantity": fill_qty,
            "fee": fill_fee,
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
        pl.lit(0.0).alias("leaves_quantity"),
        _either("buy", plan.entry_tag, plan.exit_tag).alias("tag"),
    )
    filled = order_filled_qty != 0.0
    # NaN marks "no fill" and becomes null, as the event path's None does.
    avg_price = np.divide(
        order_filled_notional, order_filled_qty, out=np.full(len(buys), np.nan), where=filled
    )
    orders = pl.DataFrame(
        {
            "ts_submitted": known_at[order_row],
            "buy": buys,
            "status": order_status,
            "reason": _reasons(order_reason, order_value, instrument),
            "code": pl.Series(order_reason).replace_strict(
                _CODES, default="", return_dtype=pl.String
            ),
            "filled_quantity": order_filled_qty,
            "avg_fill_price": pl.Series(avg_price, nan_to_null=True),
            "ts_closed": np.where(
                order_status == signal_path.FILLED, ts[order_close_row], known_at[order_close_row]
            ),
        }
    ).select(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("order_id"),
        pl.col("ts_submitted").cast(UTC_NS),
        pl.lit(symbol).alias("instrument"),
        _either("buy", "buy", "sell").alias("side"),
        pl.lit("market").alias("type"),
        pl.lit("gtc").alias("time_in_force"),
        pl.lit(None, dtype=pl.Float64).alias("quantity"),
        _either("buy", plan.entry_fraction, plan.exit_fraction).alias("fraction"),
        pl.lit(None, dtype=pl.Float64).alias("limit_price"),
        pl.lit(None, dtype=pl.Float64).alias("stop_price"),
        _either("buy", plan.entry_tag, plan.exit_tag).alias("tag"),
        pl.col("status").replace_strict(_STATUS, return_dtype=pl.String),
        "reason",
        "code",
        "filled_quantity",
        "avg_fill_price",
        pl.col("ts_closed").cast(UTC_NS),
    )
    return build_result(
        strategy=strategy,
        params=params,
        seed=seed,
        fills=fills,
        orders=orders,
        timeline=ts,
        books=Books(cash, {symbol: position}),
        marks={symbol: close},
        closes={symbol: close},
        initial_cash=initial_cash,
        fees_paid=float(fees_paid[0]),
        intrabar_decisions=0,
        repairs=repairs,
        stats=stats,
        ranges={symbol: (ts, frame["high"].to_numpy(), frame["low"].to_numpy())},
    )


def _taker_rate(fees: FeeModel) -> float:
    if isinstance(fees, MakerTakerFee):
        return fees.taker
    assert isinstance(fees, FixedRateFee)
    return fees.rate


def _slip(slippage: SlippageModel) -> float:
    # FixedBpsSlippage moves a buy to price * (1 + bps * 1e-4) and a sell to price * (1 - bps * 1e-4);
    # no slippage is the same with 0 (price * 1.0 is price exactly).
    return slippage.bps * 1e-4 if isinstance(slippage, FixedBpsSlippage) else 0.0


def _limit(value: float | None) -> float:
    return math.nan if value is None else value


def _either(mask: str, yes: str | float, no: str | float) -> pl.Expr:
    return pl.when(pl.col(mask)).then(pl.lit(yes)).otherwise(pl.lit(no))


def _reasons(codes: np.ndarray, values: np.ndarray, instrument: Instrument) -> pl.Series:
    """The messages the event-driven modules write (risk.rules, the venue), for the few orders that
    did not fill."""
    reasons = pl.repeat("", len(codes), eager=True)
    unfilled = np.flatnonzero(codes)
    if len(unfilled):
        messages = [_reason(int(codes[k]), float(values[k]), instrument) for k in unfilled]
        reasons = reasons.scatter(unfilled, messages)
    return reasons


def _reason(code: int, value: float, instrument: Instrument) -> str:
    if code == signal_path.DENIED_NO_CASH:
        return f"insufficient cash: available {value:.8g}"
    if code == signal_path.DENIED_BELOW_MIN_NOTIONAL:
        return f"notional {value:.8g} below minimum {instrument.min_notional}"
    if code == signal_path.DENIED_ABOVE_MAX_NOTIONAL:
        return f"notional {value:.8g} above maximum {instrument.max_notional}"
    if code == signal_path.CANCELED_SIZED_TO_ZERO:
        return "order sized to zero at fill"
    if code == signal_path.CANCELED_END_OF_DATA:
        return "end of data"
    raise ValueError(f"unknown order outcome code {code}")
