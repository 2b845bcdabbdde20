"""Trade-for-trade parity with backtesting.py, which shorts: a stop-and-reverse SMA cross on a
perpetual at leverage 1 (no funding) gives the same trades in both.

    .venv/bin/python scripts/parity_backtesting_py.py [--fast 10] [--slow 30] [--fee 0.0004]

Both engines size each entry from the equity available once the previous trade is closed, at the
next bar's open with the fee included, in units of 1e-8 BTC (backtesting.py's FractionalBacktest;
here a lot size of 1e-8); prices and bars must match exactly, quantities to one unit, P&L to 1e-9
of the cash.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from backtester import Backtest, Instrument
from backtester.strategies import SmaCross
from backtester.strategy.library.sma_cross import sma_cross_signals

DATA = Path(__file__).resolve().parents[1] / "golden" / "data" / "binance_BTC-USDT_1m.parquet"
SYMBOL = "BTC/USDT:USDT"
UNIT = 1e-8
CASH = 100_000.0


class HalfReversal(SmaCross):
    """SmaCross long and short, each entry half of the equity available."""

    entry_fraction = 0.5


@dataclass(frozen=True)
class Trade:
    side: str
    entry_bar: int
    exit_bar: int
    entry_price: float
    exit_price: float
    quantity: float
    pnl: float


def ours(frame: pl.DataFrame, fast: int, slow: int, fee: float) -> list[Trade]:
    perp = Instrument(SYMBOL, kind="perpetual", leverage=1, lot_size=UNIT)
    result = Backtest(frame, HalfReversal, cash=CASH, fee_rate=fee, instrument=perp).run(
        fast=fast, slow=slow, short=True
    )
    index = {ts: i for i, ts in enumerate(result.equity["ts"].dt.epoch("ns").to_list())}
    closed = result.trades.filter(~pl.col("is_open"))
    return [
        Trade(
            row["side"],
            index[row["entry_time"]],
            index[row["exit_time"]],
            row["entry_price"],
            row["exit_price"],
            row["quantity"],
            row["pnl"],
        )
        for row in closed.with_columns(pl.col("entry_time", "exit_time").dt.epoch("ns")).iter_rows(
            named=True
        )
    ]


def theirs(frame: pl.DataFrame, fast: int, slow: int, fee: float) -> list[Trade]:
    import pandas as pd

    os.environ.setdefault("TQDM_DISABLE", "1")  # its progress bar would only clutter the output
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    signal = sma_cross_signals(frame["close"].to_numpy(), fast, slow)

    class Reversal(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.signal = self.I(lambda: signal, name="signal", plot=False)

        def next(self) -> None:
            s = self.signal[-1]
            if s > 0 and not self.position.is_long:
                self.position.close()
                self.buy(size=HalfReversal.entry_fraction)
            elif s < 0 and not self.position.is_short:
                self.position.close()
                self.sell(size=HalfReversal.entry_fraction)

    ts = frame["timestamp_ms"] if "timestamp_ms" in frame.columns else frame["ts"] // 1_000_000
    data = pd.DataFrame(
        {name.capitalize(): frame[name].to_numpy() for name in ("open", "high", "low", "close")}
        | {"Volume": frame["volume"].to_numpy()},
        index=pd.to_datetime(ts.to_numpy(), unit="ms"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = FractionalBacktest(
            data,
            Reversal,
            cash=CASH,
            commission=fee,
            fractional_unit=UNIT,
            finalize_trades=False,
        ).run()
    trades = stats["_trades"]
    return [
        Trade(
            "long" if size > 0 else "short",
            int(entry_bar),
            int(exit_bar),
            float(entry_price),
            float(exit_price),
            abs(float(size)),
            float(pnl),
        )
        for size, entry_bar, exit_bar, entry_price, exit_price, pnl in zip(
            trades["Size"],
            trades["EntryBar"],
            trades["ExitBar"],
            trades["EntryPrice"],
            trades["ExitPrice"],
            trades["PnL"],
            strict=True,
        )
    ]


def compare(frame: pl.DataFrame, fast: int, slow: int, fee: float) -> tuple[list[Trade], list[str]]:
    """Our trades, and every way backtesting.py's differ from them."""
    mine, peer = ours(frame, fast, slow, fee), theirs(frame, fast, slow, fee)
    problems: list[str] = []
    if len(mine) != len(peer):
        problems.append(f"{len(mine)} trades here, {len(peer)} in backtesting.py")
    for k, (a, b) in enumerate(zip(mine, peer, strict=False)):
        same_bars = (a.side, a.entry_bar, a.exit_bar) == (b.side, b.entry_bar, b.exit_bar)
        same_prices = np.isclose(a.entry_price, b.entry_price, rtol=1e-12) and np.isclose(
            a.exit_price, b.exit_price, rtol=1e-12
        )
        same_size = abs(a.quantity - b.quantity) <= 1.5 * UNIT
        same_pnl = abs(a.pnl - b.pnl) <= 1e-9 * CASH + 2 * UNIT * a.exit_price
        if not (same_bars and same_prices and same_size and same_pnl):
            problems.append(f"trade {k}: here {a}, backtesting.py {b}")
    return mine, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", type=int, default=10)
    parser.add_argument("--slow", type=int, default=30)
    parser.add_argument("--fee", type=float, default=0.0004)
    args = parser.parse_args()
    frame = pl.read_parquet(DATA)
    trades, problems = compare(frame, args.fast, args.slow, args.fee)
    shorts = sum(t.side == "short" for t in trades)
    print(f"{len(trades)} closed trades ({shorts} short) on {frame.height} bars of {DATA.name}")
    for line in problems[:20]:
        print(line)
    print("identical trades" if not problems else f"{len(problems)} differences")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
