"""SmaExtended's controls: cooldown after an exit and the daily loss limit, on hand-built bars where the
crossovers are known."""

from __future__ import annotations

import numpy as np
import polars as pl

from backtester import Backtest
from backtester.strategies import SmaExtended
from backtester.strategy.library.sma_cross import sma_cross_signals

T0_MS = 1_700_006_400_000  # a UTC midnight
BAR_MS = 60_000


def frame_from_closes(closes: list[float], start_ms: int = T0_MS) -> pl.DataFrame:
    close = np.array(closes)
    open_ = np.concatenate(([close[0]], close[:-1]))
    return pl.DataFrame(
        {
            "timestamp_ms": start_ms + np.arange(len(close)) * BAR_MS,
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "volume": np.full(len(close), 1_000.0),
        }
    )


# fast=1, slow=2: the 1-bar "average" crosses the 2-bar one whenever the close turns.
ZIGZAG = [100.0, 101.0, 100.0, 101.0, 100.0, 101.0, 100.0, 101.0, 100.0, 101.0, 100.0, 101.0]


def entries(result) -> list[int]:  # type: ignore[no-untyped-def]
    buys = result.fills.filter(pl.col("side") == "buy")
    ts = buys["ts"].dt.epoch("ms").to_numpy()
    return ((ts - T0_MS) // BAR_MS).tolist()


def test_without_cooldown_every_cross_up_enters_at_the_next_open() -> None:
    frame = frame_from_closes(ZIGZAG)
    signal = sma_cross_signals(frame["close"].to_numpy(), 1, 2)
    result = Backtest(frame, SmaExtended, cash=1_000.0).run(fast=1, slow=2)
    assert entries(result) == [i + 1 for i in np.flatnonzero(signal > 0) if i + 1 < len(ZIGZAG)]


def test_cooldown_ignores_signals_from_the_exit_bar_on() -> None:
    frame = frame_from_closes(ZIGZAG)
    # Cross-ups at 3, 5, 7, 9 enter at 4, 6, 8, 10; cross-downs at 4, 6, 8, 10 exit at 5, 7, 9, 11.
    by_cooldown = {
        n: entries(Backtest(frame, SmaExtended, cash=1_000.0).run(fast=1, slow=2, cooldown_bars=n))
        for n in range(4)
    }
    assert by_cooldown[0] == [4, 6, 8, 10]
    # Exit on bar 5: with 1 or 2 bars of cooldown the cross-up at 5 is ignored, the one at 7 taken.
    assert by_cooldown[1] == [4, 8]
    assert by_cooldown[2] == [4, 8]
    # With 3, the cross-up at 7 (2 bars after the exit) is ignored too.
    assert by_cooldown[3] == [4, 10]


def test_daily_loss_limit_halts_entries_for_the_rest_of_the_utc_day_only() -> None:
    day = 1_440
    # On each of two UTC days, a whipsaw that loses on every round trip.
    whipsaw = [100.0 + (i % 2) * 1.0 - (i // 2) * 0.5 for i in range(40)]
    closes = whipsaw + [100.0] * (day - len(whipsaw)) + whipsaw
    frame = frame_from_closes(closes)
    free = Backtest(frame, SmaExtended, cash=1_000.0, fee_rate=0.001).run(fast=1, slow=2)
    limited = Backtest(frame, SmaExtended, cash=1_000.0, fee_rate=0.001).run(
        fast=1, slow=2, daily_loss_limit_pct=1.0
    )
    # The first trade of each day loses more than 1%: no further entry that day, a fresh start the next.
    assert entries(limited) == [4, day + 2]
    assert len(entries(free)) > 30


def test_trend_filter_enters_only_above_the_long_average() -> None:
    # A zigzag that first falls, then rises: crosses up everywhere, but above its 6-bar average
    # only once the rise has carried the close over it.
    falling = [110.0 - 0.8 * i + (i % 2) for i in range(12)]
    rising = [falling[-1] + 0.8 * i + (i % 2) for i in range(1, 13)]
    closes = falling + rising
    frame = frame_from_closes(closes)
    signal = sma_cross_signals(frame["close"].to_numpy(), 1, 2)
    close = np.array(closes)
    sma6 = np.array([np.nan] * 5 + [close[i - 5 : i + 1].mean() for i in range(5, len(close))])
    wanted = [
        i + 1
        for i in np.flatnonzero(signal > 0)
        if close[i] > sma6[i] and i + 1 < len(closes)  # NaN (window not full) compares False
    ]
    result = Backtest(frame, SmaExtended, cash=1_000.0).run(fast=1, slow=2, trend_bars=6)
    unfiltered = Backtest(frame, SmaExtended, cash=1_000.0).run(fast=1, slow=2)
    assert wanted, "the test data has entries above the trend"
    got = entries(result)
    assert set(got) <= set(wanted)
    assert got[0] == wanted[0]
    assert len(got) < len(entries(unfiltered))
