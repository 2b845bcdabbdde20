"""The look-ahead check flags a strategy that reads the next bar (in `on_bar`, in a vectorized signal,
in a registered indicator) on every example, and reports nothing for the built-in strategies and for
a strategy that registers every indicator of the library."""

from __future__ import annotations

import inspect
from typing import Any

import msgspec
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtester import Backtest, SignalStrategy, Strategy
from backtester.cli import main
from backtester.domain.messages import Bar
from backtester.indicators import smc
from backtester.strategies import HourlyTrendCross, SmaCross, SmaExtended, SmcOrderBlocks
from tests.engine_support import bars_frame

GOLDEN = "golden/data/binance_BTC-USDT_1m.parquet"


def random_bars(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.Generator(np.random.PCG64(seed))
    close = np.round(100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 2)
    open_ = np.round(np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, 0.002, n)), 2)
    high = np.maximum(open_, close) + 0.05
    low = np.minimum(open_, close) - 0.05
    rows = list(zip(open_, high, low, close, np.full(n, 10.0), strict=True))
    return bars_frame(rows)


class NoParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class PeeksInOnBar(Strategy[NoParams]):
    """Buys when the next bar opens above this close, sells when below: reads a bar not yet known."""

    def on_start(self) -> None:
        self.opens = self.ctx.data[self.ctx.primary]["open"].to_list()

    def on_bar(self, bar: Bar) -> None:
        if bar.index + 1 >= len(self.opens):
            return
        upcoming = self.opens[bar.index + 1]
        if self.position == 0 and upcoming > bar.close:
            self.buy(fraction=1.0)
        elif self.position > 0 and upcoming < bar.close:
            self.close()


class PeeksInSignal(SignalStrategy[NoParams]):
    def signals(self) -> np.ndarray:
        frame = self.ctx.data[self.ctx.primary]
        upcoming = np.append(frame["open"].to_numpy()[1:], np.nan)
        return np.where(upcoming > frame["close"].to_numpy(), 1, -1).astype(np.int8)


class PeeksInIndicator(Strategy[NoParams]):
    def on_start(self) -> None:
        close = self.ctx.data[self.ctx.primary]["close"].to_numpy()
        self.ctx.register_indicator("next_close", np.roll(close, -1))


PEEKS = {"on_bar": PeeksInOnBar, "signal": PeeksInSignal, "indicator": PeeksInIndicator}


@settings(max_examples=12, deadline=None)
@given(
    where=st.sampled_from(sorted(PEEKS)),
    bars=st.integers(min_value=150, max_value=400),
    data_seed=st.integers(min_value=0, max_value=2**31),
    check_seed=st.integers(min_value=0, max_value=2**31),
)
def test_a_planted_peek_is_flagged_every_time(
    where: str, bars: int, data_seed: int, check_seed: int
) -> None:
    bt = Backtest(random_bars(bars, data_seed), PEEKS[where], fee_rate=0.001)
    report = bt.check_lookahead(seed=check_seed)
    assert not report.ok
    kinds = {finding.kind for finding in report.findings}
    expected = {"on_bar": "order", "signal": "signal", "indicator": "indicator"}[where]
    assert expected in kinds, report


def test_a_peek_past_the_end_of_the_data_is_a_finding() -> None:
    class Unguarded(PeeksInOnBar):
        """Guards its peek with the length of the data it was written for."""

        def on_bar(self, bar: Bar) -> None:
            peek = bar.index + 1 < 200 and self.opens[bar.index + 1] > bar.close
            if peek and self.position == 0:
                self.buy(fraction=1.0)

    report = Backtest(random_bars(200, 3), Unguarded).check_lookahead(cuts=5)
    assert {f.kind for f in report.findings} == {"error"}
    assert "IndexError" in report.findings[0].detail


@pytest.mark.parametrize(
    ("strategy", "params"),
    [
        (SmaCross, {"fast": 5, "slow": 20}),
        (SmaExtended, {"fast": 5, "slow": 20, "stop_loss_pct": 0.3, "take_profit_pct": 0.5}),
        (SmaExtended, {"fast": 5, "slow": 20, "daily_loss_limit_pct": 1.0, "cooldown_bars": 3}),
        (SmcOrderBlocks, {"swing_length": 10}),
        (HourlyTrendCross, {"fast": 5, "slow": 20, "trend_hours": 6}),
    ],
)
def test_built_in_strategies_have_no_look_ahead(strategy: Any, params: dict[str, Any]) -> None:
    bars = pl.read_parquet(GOLDEN).head(4_000)
    report = Backtest(bars, strategy, cash=100_000, fee_rate=0.001).check_lookahead(**params)
    assert report.ok, report
    assert len(report.cuts) == 20


class EveryIndicator(Strategy[NoParams]):
    """Registers every output of every indicator of the library, Smart Money Concepts included."""

    def on_start(self) -> None:
        from backtester import indicators as ta

        frame = self.ctx.data[self.ctx.primary]
        columns = {
            "values": frame["close"],
            "open": frame["open"],
            "high": frame["high"],
            "low": frame["low"],
            "close": frame["close"],
            "volume": frame["volume"],
            "timestamps": frame["ts"],
        }
        for module in (ta, smc):
            for name in module.__all__:
                function = getattr(module, name)
                if not (name[0].islower() and inspect.isfunction(function)):
                    continue
                required = [
                    p
                    for p, spec in inspect.signature(function).parameters.items()
                    if spec.default is inspect.Parameter.empty
                ]
                output = function(*(columns[p] for p in required))
                outputs = output._asdict() if isinstance(output, tuple) else {"": output}
                for part, values in outputs.items():
                    self.ctx.register_indicator(f"{name}.{part}", np.asarray(values, float))


def test_every_indicator_passes_the_check_and_recursive_ones_report_their_warm_up() -> None:
    bars = pl.read_parquet(GOLDEN).head(3_000)
    report = Backtest(bars, EveryIndicator).check_lookahead()
    assert report.ok, report
    drift = {d.indicator: d for d in report.drift}
    assert drift["sma."].settles_after == 0  # a window: the same value once it is full
    assert drift["ema."].settles_after is None or drift["ema."].settles_after > 0
    assert drift["rsi."].worst[1] > drift["rsi."].worst[2]  # the drift fades with history


@pytest.mark.parametrize(
    "config",
    # The second reads its hours from a given 1h series, which the cut runs see only up to the cut.
    ["configs/sma_cross.toml", "configs/hourly_trend_1m.toml"],
)
def test_lookahead_command_exits_0_for_a_built_in_config(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lookahead", config, "--cuts", "3"]) == 0
    assert "none found" in capsys.readouterr().out


def test_lookahead_command_exits_1_and_names_the_peek(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "peek.toml"
    config.write_text(
        f'[[data]]\nkind = "file"\npath = "{GOLDEN}"\nsymbol = "BTC/USDT"\n\n'
        '[strategy]\nname = "tests.integration.test_lookahead:PeeksInSignal"\n'
    )
    assert main(["lookahead", str(config), "--cuts", "10"]) == 1
    out = capsys.readouterr().out
    assert "LOOK-AHEAD" in out and "signal: row" in out


def test_lookahead_command_runs_a_perpetual_with_its_marks_and_funding(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The check runs the config as `run` does, with its mark and funding series.
    assert main(["lookahead", "golden/perp_short_funding/config.toml", "--cuts", "4"]) == 0
    assert "none found" in capsys.readouterr().out
