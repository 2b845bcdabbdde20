"""On a bar that reaches both a long's stop-loss and its take-profit, the default path fills the
stop-loss, as backtesting.py and backtrader do, whichever way the bar closes; on the entry's own
bar too, as backtesting.py does (backtrader's bracket exits only start on the bar after the entry).
All three engines run the same hand-built bars with a market entry at 100, stop 95, target 105."""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd
import pytest

from backtester import Backtest, Strategy
from backtester.domain.messages import Bar
from tests.engine_support import T0_MS, Row, bars_frame

FLAT: Row = (100.0, 100.0, 100.0, 100.0, 1000.0)
UP: Row = (100.0, 106.0, 94.0, 104.0, 1000.0)
DOWN: Row = (100.0, 106.0, 94.0, 96.0, 1000.0)
STOP, TARGET = 95.0, 105.0


def bars(both: Row, entry_bar: bool) -> list[Row]:
    """The bracket is sent on bar 1 (backtesting.py's first call) and its entry fills at bar 2's
    open; the bar that reaches both levels is bar 2 itself or bar 3."""
    return [FLAT, FLAT, both, FLAT] if entry_bar else [FLAT, FLAT, FLAT, both, FLAT]


def ours(rows: list[Row]) -> tuple[int, float]:
    class Bracket(Strategy[Any]):
        def on_bar(self, bar: Bar) -> None:
            if bar.index == 1:
                self.buy(1.0, sl=STOP, tp=TARGET)

    result = Backtest(bars_frame(rows), Bracket, cash=1000).run()
    trade = result.trades.to_dicts()[0]
    ts = [int(t.timestamp() * 1000) for t in result.equity["ts"].to_list()]
    return ts.index(int(trade["exit_time"].timestamp() * 1000)), trade["exit_price"]


def pandas_bars(rows: list[Row]) -> pd.DataFrame:
    index = pd.to_datetime([T0_MS + 60_000 * i for i in range(len(rows))], unit="ms")
    return pd.DataFrame(rows, columns=["Open", "High", "Low", "Close", "Volume"], index=index)


def backtesting_py(rows: list[Row]) -> tuple[int, float]:
    import backtesting.backtesting
    from backtesting import Backtest as PeerBacktest
    from backtesting import Strategy as PeerStrategy

    backtesting.backtesting._tqdm = lambda seq, **_: seq  # its bar off, as without tqdm

    class Bracket(PeerStrategy):  # type: ignore[misc]
        def init(self) -> None:
            pass

        def next(self) -> None:
            if len(self.data) == 2:
                self.buy(size=1, sl=STOP, tp=TARGET)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = PeerBacktest(pandas_bars(rows), Bracket, cash=1000, commission=0.0).run()
    trade = stats["_trades"].iloc[0]
    return int(trade["ExitBar"]), float(trade["ExitPrice"])


def backtrader(rows: list[Row]) -> list[tuple[int, float]]:
    import backtrader as bt

    exits: list[tuple[int, float]] = []

    class Bracket(bt.Strategy):  # type: ignore[misc]
        def next(self) -> None:
            if len(self) == 2:
                self.buy_bracket(
                    size=1, exectype=bt.Order.Market, stopprice=STOP, limitprice=TARGET
                )

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed and order.issell():
                exits.append((len(self) - 1, order.executed.price))

    cerebro = bt.Cerebro(stdstats=False)
    frame = pandas_bars(rows).rename(columns=str.lower)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(Bracket)
    cerebro.broker.setcash(1000.0)
    cerebro.run()
    return exits


@pytest.mark.parametrize("both", [UP, DOWN], ids=["up-bar", "down-bar"])
def test_a_bar_reaching_both_levels_fills_the_stop_loss_as_backtesting_py_and_backtrader_do(
    both: Row,
) -> None:
    rows = bars(both, entry_bar=False)
    assert ours(rows) == backtesting_py(rows) == (3, STOP)
    assert backtrader(rows) == [(3, STOP)]


@pytest.mark.parametrize("both", [UP, DOWN], ids=["up-bar", "down-bar"])
def test_on_the_entry_bar_too_the_stop_loss_fills_as_backtesting_py_decides(both: Row) -> None:
    rows = bars(both, entry_bar=True)
    assert ours(rows) == backtesting_py(rows) == (2, STOP)
