"""The notebook API from the README works end to end, and an independent plain-Python SmaCross
reproduces the engine's fills, fees and final equity exactly on the golden data."""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec
import polars as pl
import pytest

from backtester import Backtest, Bar, RunResult, Strategy
from backtester.strategies import SmaCross
from backtester.strategy.base import ParamsError
from backtester.strategy.library.sma_cross import sma_cross_signals

GOLDEN = "golden/data/binance_BTC-USDT_1m.parquet"
CASH = 100_000.0
FEE = 0.001


@pytest.fixture(scope="module")
def result() -> RunResult:
    # The README snippet, verbatim but for the assignment.
    from backtester import Backtest
    from backtester.strategies import SmaCross

    bt = Backtest(GOLDEN, SmaCross, cash=100_000, fee_rate=0.001, seed=7)
    return bt.run(fast=10, slow=30)


def test_readme_snippet_runs_and_reports_stats_trades_and_digest(result: RunResult) -> None:
    assert isinstance(result.stats["sharpe"], float)
    assert math.isfinite(result.stats["sharpe"])
    assert isinstance(result.stats["max_drawdown_pct"], float)
    assert result.stats["max_drawdown_pct"] <= 0.0
    assert len(result.trades) > 0
    assert re.fullmatch(r"[0-9a-f]{32}", result.digest)
    assert result.stats["bars"] == 30_900
    assert result.params == {"fast": 10, "slow": 30, "short": False}
    assert result.seed == 7
    assert repr(result).startswith(
        "<RunResult SmaCross(fast=10, slow=30, short=False) seed=7 bars=30900"
    )
    assert "<table>" in result._repr_html_()


def test_result_frames_have_the_documented_columns(result: RunResult) -> None:
    assert result.equity.columns == [
        "ts",
        "cash",
        "position_value",
        "equity",
        "drawdown_pct",
        "funding",
        "notional",
    ]
    assert result.equity.height == 30_900
    assert {"entry_time", "exit_time", "entry_price", "exit_price", "pnl", "is_open"} <= set(
        result.trades.columns
    )
    assert {"price", "quantity", "fee", "liquidity"} <= set(result.fills.columns)
    assert set(result.orders["status"]) <= {"filled", "canceled", "denied", "expired"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fast": 10, "slow": 30, "slowest": 60}, "unknown field `slowest`"),
        ({"fast": "ten"}, "Expected `int`, got `str`"),
        ({"fast": 30, "slow": 10}, "need 1 <= fast < slow"),
    ],
    ids=["unknown", "wrong-type", "invalid"],
)
def test_bad_strategy_params_raise_params_error_naming_the_declared_ones(
    params: dict[str, object], message: str
) -> None:
    bt = Backtest(GOLDEN, SmaCross, cash=100_000, fee_rate=0.001)
    with pytest.raises(ParamsError, match=r"declared parameters: fast, slow, short") as error:
        bt.run(**params)
    assert message in str(error.value)


# --- an independent SmaCross ----------------------------------------------------------------------


def plain_sma_cross(
    frame: pl.DataFrame, fast: int, slow: int, cash: float, fee: float
) -> tuple[list[tuple[int, str, float, float, float]], float]:
    """SmaCross by hand. On a crossover at bar i, act at bar i+1's open: buy with all the cash, the
    fee reserved (the largest quantity whose cost fits the cash: cash / (open * (1 + fee)), less
    the ulp the division may overshoot by), or sell the whole position. The fee is a rate on the
    fill's notional. Decisions at bar i see the position after bar i's own fill."""
    ts = frame["timestamp_ms"].to_list()
    opens = frame["open"].to_list()
    signal = sma_cross_signals(frame["close"].to_numpy(), fast, slow).tolist()
    fills: list[tuple[int, str, float, float, float]] = []
    position, pending = 0.0, 0
    for i, price in enumerate(opens):
        if pending > 0:
            quantity = cash / (price * (1.0 + fee))
            while quantity * price + quantity * price * fee > cash:
                quantity = math.nextafter(quantity, 0.0)
            notional = quantity * price
            cash -= notional + notional * fee
            position += quantity
            fills.append((ts[i], "buy", price, quantity, notional * fee))
        elif pending < 0:
            quantity = position
            notional = quantity * price
            cash += notional - notional * fee
            position -= quantity
            fills.append((ts[i], "sell", price, quantity, notional * fee))
        pending = 0
        if signal[i] > 0 and position == 0.0:
            pending = 1
        elif signal[i] < 0 and position > 0.0:
            pending = -1
    final_equity = cash + position * frame["close"][-1]
    return fills, final_equity


def test_plain_python_smacross_reproduces_the_engine_exactly(result: RunResult) -> None:
    frame = pl.read_parquet(GOLDEN)
    expected, final_equity = plain_sma_cross(frame, 10, 30, CASH, FEE)
    engine = result.fills.select(
        pl.col("ts").dt.epoch("ms"), "side", "price", "quantity", "fee"
    ).rows()
    assert len(engine) == len(expected) > 100
    assert engine == expected
    assert result.equity["equity"][-1] == final_equity
    assert result.stats["final_equity"] == final_equity
    assert result.stats["fees_paid"] == pytest.approx(sum(f[4] for f in expected), rel=1e-12)
    assert result.stats["trades"] == sum(1 for f in expected if f[1] == "sell")


# --- the README's custom strategy -----------------------------------------------------------------


class Breakout(Strategy[Any]):
    """The README's example: buy half the cash on a breakout above the previous `lookback` highs, close
    on a 2% drop below the entry."""

    class Params(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
        lookback: int = 20

    def on_start(self) -> None:
        high = self.ctx.data[self.ctx.primary]["high"]
        lookback = self.params.lookback
        self.ctx.register_indicator("hh", high.rolling_max(lookback).shift(1).to_numpy())

    def on_bar(self, bar: Bar) -> None:
        if self.position == 0 and bar.close > self.ctx.indicator("hh"):
            self.buy(fraction=0.5)
        elif self.position > 0 and bar.close < self.ctx.avg_prices[bar.instrument] * 0.98:
            self.close()


def test_readme_custom_strategy_trades_with_typed_params() -> None:
    bt = Backtest(GOLDEN, Breakout, cash=100_000, fee_rate=0.001)
    result = bt.run(lookback=60)
    assert result.params == {"lookback": 60}
    assert len(result.trades) > 0
    assert set(result.orders["status"]) <= {"filled", "canceled", "denied", "expired"}
    # Each entry spends half the cash held before it, sized at the fill price with the fee reserved.
    cash_before = dict(
        zip(result.equity["ts"].shift(-1).to_list(), result.equity["cash"].to_list(), strict=True)
    )
    buys = result.fills.filter(side="buy")
    assert buys.height > 0
    for ts, price, quantity, fee in buys.select("ts", "price", "quantity", "fee").iter_rows():
        notional = price * quantity
        assert fee == notional * 0.001
        assert notional + fee == pytest.approx(cash_before[ts] / 2, rel=1e-12)
        assert notional + fee <= cash_before[ts] / 2
    with pytest.raises(ParamsError, match="declared parameters: lookback"):
        bt.run(window=60)
