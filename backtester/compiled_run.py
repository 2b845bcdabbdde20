"""Runs a `SignalPlan` on the compiled order path and assembles the same `RunResult` the event-driven
engine would (adr/0011): same frames, same statistics, same digest."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import polars as pl

from backtester.compiled import signal_path
from backtester.config import RiskConfig
from backtester.data.bars import RepairReport
from backtester.domain.instrument import Instrument
from backtester.domain.models import FeeModel, SlippageModel
from backtester.execution.fees import FixedRateFee, MakerTakerFee
from backtester.execution.slippage import FixedBpsSlippage, NoSlippage
from backtester.results import RunResult, build_result, fills_from_columns, orders_from_columns
from backtester.strategy.signal import SignalPlan

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
) -> str | None:
    """Why this run cannot take the compiled order path, or None if it can."""
    if streams != 1:
        return "it runs on several streams"
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
) -> RunResult:
    ts = frame["ts"].to_numpy()
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
    fill_buys = order_side[fill_order] > 0
    fills = fills_from_columns(
        {
            "ts": ts[fill_row],
            "order_id": fill_order + 1,
            "instrument": pl.repeat(symbol, len(fill_row), eager=True),
            "side": _buy_sell(fill_buys),
            "price": fill_price,
            "quantity": fill_qty,
            "fee": fill_fee,
            "liquidity": pl.repeat("taker", len(fill_row), eager=True),
            "leaves_quantity": np.zeros(len(fill_row)),
        }
    )
    count = len(order_row)
    buys = order_side > 0
    filled = order_filled_qty != 0.0
    # NaN marks "no fill" and becomes null, as the event path's None does.
    avg_price = np.divide(
        order_filled_notional, order_filled_qty, out=np.full(count, np.nan), where=filled
    )
    orders = orders_from_columns(
        {
            "order_id": np.arange(1, count + 1, dtype=np.int64),
            "ts_submitted": ts[order_row],
            "instrument": pl.repeat(symbol, count, eager=True),
            "side": _buy_sell(buys),
            "type": pl.repeat("market", count, eager=True),
            "time_in_force": pl.repeat("gtc", count, eager=True),
            "quantity": pl.repeat(None, count, dtype=pl.Float64, eager=True),
            "fraction": np.where(buys, plan.entry_fraction, plan.exit_fraction),
            "limit_price": pl.repeat(None, count, dtype=pl.Float64, eager=True),
            "stop_price": pl.repeat(None, count, dtype=pl.Float64, eager=True),
            "tag": _either(buys, plan.entry_tag, plan.exit_tag),
            "status": pl.Series(order_status, dtype=pl.Int8).replace_strict(
                _STATUS, return_dtype=pl.String
            ),
            "reason": _reasons(order_reason, order_value, instrument),
            "filled_quantity": order_filled_qty,
            "avg_fill_price": pl.Series(avg_price, nan_to_null=True),
            "ts_closed": ts[order_close_row],
        }
    )
    return build_result(
        strategy=strategy,
        params=params,
        seed=seed,
        fills=fills,
        orders=orders,
        timeline=ts,
        cash=cash,
        positions={symbol: position},
        closes={symbol: close},
        initial_cash=initial_cash,
        fees_paid=float(fees_paid[0]),
        intrabar_decisions=0,
        repairs=repairs,
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


def _buy_sell(buys: np.ndarray) -> pl.Series:
    return _either(buys, "buy", "sell")


def _either(mask: np.ndarray, yes: str, no: str) -> pl.Series:
    return pl.select(
        pl.when(pl.Series(mask, dtype=pl.Boolean)).then(pl.lit(yes)).otherwise(pl.lit(no))
    ).to_series()


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
