"""What a bracket costs: an SMA cross whose entries carry a stop-loss and a take-profit, sent as one
bracket (`buy(fraction=1.0, sl_pct=..., tp_pct=...)`: the venue links the exits), next to the same
strategy wiring them by hand in `on_fill` (SmaExtended: a stop and a limit placed once the entry
fills, the other canceled when one fills), in dense mode on a synthetic year of 1-minute bars.

    python scripts/bench_brackets.py [--bars 525600] [--repeat 3]

Both run from the same in-memory frame after a warm-up run on its first bars (imports and kernels
apart); the figures are the median of `--repeat` runs, wall and CPU seconds, and the ratio of the
two, measured in this one run. The trades are not the same: a bracket's exits go live on the rest
of the entry's own bar, the hand-wired ones from the next bar on.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import polars as pl
from synthetic import synthetic_bars

from backtester import Backtest, RunResult
from backtester.domain.messages import Bar, OrderFilled
from backtester.strategies import SmaExtended

PARAMS: dict[str, Any] = {"fast": 10, "slow": 30, "stop_loss_pct": 0.5, "take_profit_pct": 1.0}
WARM_BARS = 20_000


class BracketSma(SmaExtended):
    """SmaExtended's entries and signal exits, its stop-loss and take-profit sent with the entry."""

    def on_bar(self, bar: Bar) -> None:
        signal = self._signal[bar.index]
        if signal == 0:
            return
        held = self.ctx.positions[self._symbol]
        if signal < 0 and held > 0.0:
            self.sell(fraction=1.0, tag="exit")
        elif signal > 0 and held == 0.0 and self._may_enter(bar.index):
            self._entry_id = self.buy(
                fraction=1.0,
                sl_pct=self.params.stop_loss_pct,
                tp_pct=self.params.take_profit_pct,
                tag="entry",
            )

    def on_fill(self, fill: OrderFilled) -> None:
        pass


def run(frame: pl.DataFrame, strategy: type[SmaExtended]) -> RunResult:
    bt = Backtest(frame, strategy, cash=100_000, fee_rate=0.001, mode="dense")
    return bt.run(progress=False, **PARAMS)


def timed(
    frame: pl.DataFrame, strategy: type[SmaExtended], repeat: int
) -> tuple[float, float, Any]:
    run(frame.head(WARM_BARS), strategy)
    walls, cpus = [], []
    result = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = run(frame, strategy)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=525_600)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    frame = synthetic_bars(args.bars)
    figures = {}
    for name, strategy in (("on_fill by hand", SmaExtended), ("bracket", BracketSma)):
        wall, cpu, result = timed(frame, strategy, args.repeat)
        reasons = result.trades.group_by("exit_reason").len().sort("exit_reason").rows()
        print(
            f"{name:16} {wall:7.2f} s wall {cpu:7.2f} s CPU  {result.stats['trades']} trades "
            f"({', '.join(f'{k}={v}' for k, v in reasons)}), {result.orders.height} orders"
        )
        figures[name] = (wall, cpu)
    (hand_wall, hand_cpu), (bracket_wall, bracket_cpu) = figures.values()
    print(
        f"bracket / by hand: {bracket_wall / hand_wall:.2f}x wall, {bracket_cpu / hand_cpu:.2f}x CPU "
        f"on {args.bars} bars (dense, median of {args.repeat})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
