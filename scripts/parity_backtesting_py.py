"""Trade-for-trade parity with backtesting.py, which shorts: a stop-and-reverse SMA cross on a
perpetual at leverage 1 (no funding) gives the same trades in both; with `--sl-pct`/`--tp-pct`
every entry also carries a stop-loss and a take-profit (`buy(sl=..., tp=...)` in both), as
absolute prices that far from the signal bar's close, which can fill on the entry's own bar.

    .venv/bin/python scripts/parity_backtesting_py.py [--fast 10] [--slow 30] [--fee 0.0004]
        [--sl-pct 0.3 --tp-pct 0.5]

Both engines size each entry from the equity available once the previous trade is closed, at the
next bar's open with the fee included, in units of 1e-8 BTC (backtesting.py's FractionalBacktest;
here a lot size of 1e-8); prices and bars must match exactly, quantities to one unit, P&L to 1e-9
of the cash.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
import polars as pl

from backtester import Backtest, Instrument
from backtester.domain.messages import Bar
from backtester.strategies import SmaCross
from backtester.strategy.library.sma_cross import sma_cross_signals
from backtester.strategy.signal import SignalStrategy

DATA = Path(__file__).resolve().parents[1] / "golden" / "data" / "binance_BTC-USDT_1m.parquet"
SYMBOL = "BTC/USDT:USDT"
UNIT = 1e-8
CASH = 100_000.0


class HalfReversal(SmaCross):
    """SmaCross long and short, each entry half of the equity available."""

    entry_fraction = 0.5


@dataclass(frozen=True)
class Exits:
    """A stop-loss and a take-profit this many percent from the signal bar's close (None: none)."""

    sl_pct: float | None = None
    tp_pct: float | None = None

    def prices(self, close: float, long: bool) -> tuple[float | None, float | None]:
        away = 1.0 if long else -1.0
        sl = None if self.sl_pct is None else close * (1.0 - away * self.sl_pct / 100.0)
        tp = None if self.tp_pct is None else close * (1.0 + away * self.tp_pct / 100.0)
        return sl, tp

    def any(self) -> bool:
        return self.sl_pct is not None or self.tp_pct is not None


class BracketReversalParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    fast: int = 10
    slow: int = 30
    short: bool = True
    sl_pct: float | None = None
    tp_pct: float | None = None


class BracketReversal(SignalStrategy[BracketReversalParams]):
    """HalfReversal whose every entry is a bracket: `buy(fraction=0.5, sl=..., tp=...)`, its exits
    priced from the close of the bar that signalled it."""

    Params = BracketReversalParams

    def signals(self) -> np.ndarray:
        close = self.ctx.data[self.ctx.primary]["close"].to_numpy()
        return sma_cross_signals(close, self.params.fast, self.params.slow)

    def on_bar(self, bar: Bar) -> None:
        signal = self.signal[bar.index]
        held = self.position
        exits = Exits(self.params.sl_pct, self.params.tp_pct)
        if signal > 0 and held <= 0.0:
            self.close()
            sl, tp = exits.prices(bar.close, long=True)
            self.buy(fraction=HalfReversal.entry_fraction, sl=sl, tp=tp, tag="entry")
        elif signal < 0 and held >= 0.0:
            self.close()
            sl, tp = exits.prices(bar.close, long=False)
            self.sell(fraction=HalfReversal.entry_fraction, sl=sl, tp=tp, tag="entry")


@dataclass(frozen=True)
class Trade:
    side: str
    entry_bar: int
    exit_bar: int
    entry_price: float
    exit_price: float
    quantity: float
    pnl: float
    exit_reason: str = ""  # ours only: backtesting.py does not record why a trade closed


def ours(frame: pl.DataFrame, fast: int, slow: int, fee: float, exits: Exits) -> list[Trade]:
    perp = Instrument(SYMBOL, kind="perpetual", leverage=1, lot_size=UNIT)
    if exits.any():
        result = Backtest(frame, BracketReversal, cash=CASH, fee_rate=fee, instrument=perp).run(
            fast=fast, slow=slow, sl_pct=exits.sl_pct, tp_pct=exits.tp_pct
        )
    else:
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
            row["exit_reason"],
        )
        for row in closed.with_columns(pl.col("entry_time", "exit_time").dt.epoch("ns")).iter_rows(
            named=True
        )
    ]


def theirs(frame: pl.DataFrame, fast: int, slow: int, fee: float, exits: Exits) -> list[Trade]:
    import backtesting.backtesting
    import pandas as pd
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    # Its progress bar would only clutter the output: the pass-through it uses without tqdm. Not
    # TQDM_DISABLE, which would reach every bar of this process and of the processes it starts.
    backtesting.backtesting._tqdm = lambda seq, **_: seq  # type: ignore[attr-defined]

    close = frame["close"].to_numpy()
    signal = sma_cross_signals(close, fast, slow)

    def scaled(price: float | None) -> float | None:
        # FractionalBacktest trades units of UNIT: its prices are ours times UNIT.
        return None if price is None else price * UNIT

    class Reversal(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.signal = self.I(lambda: signal, name="signal", plot=False)

        def next(self) -> None:
            s = self.signal[-1]
            last = float(close[len(self.data) - 1])
            if s > 0 and not self.position.is_long:
                self.position.close()
                sl, tp = exits.prices(last, long=True)
                self.buy(size=HalfReversal.entry_fraction, sl=scaled(sl), tp=scaled(tp))
            elif s < 0 and not self.position.is_short:
                self.position.close()
                sl, tp = exits.prices(last, long=False)
                self.sell(size=HalfReversal.entry_fraction, sl=scaled(sl), tp=scaled(tp))

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


def compare(
    frame: pl.DataFrame, fast: int, slow: int, fee: float, exits: Exits | None = None
) -> tuple[list[Trade], list[str]]:
    """Our trades, and every way backtesting.py's differ from them."""
    exits = exits or Exits()
    mine, peer = ours(frame, fast, slow, fee, exits), theirs(frame, fast, slow, fee, exits)
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
    parser.add_argument("--sl-pct", type=float, help="stop-loss, percent from the signal's close")
    parser.add_argument("--tp-pct", type=float, help="take-profit, percent from the signal's close")
    args = parser.parse_args()
    frame = pl.read_parquet(DATA)
    exits = Exits(args.sl_pct, args.tp_pct)
    trades, problems = compare(frame, args.fast, args.slow, args.fee, exits)
    shorts = sum(t.side == "short" for t in trades)
    print(f"{len(trades)} closed trades ({shorts} short) on {frame.height} bars of {DATA.name}")
    if exits.any():
        reasons = Counter(t.exit_reason for t in trades)
        same_bar = sum(t.entry_bar == t.exit_bar for t in trades)
        print("exits: " + ", ".join(f"{k}={v}" for k, v in sorted(reasons.items())))
        print(f"{same_bar} trades closed on their entry bar")
    for line in problems[:20]:
        print(line)
    print("identical trades" if not problems else f"{len(problems)} differences")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
