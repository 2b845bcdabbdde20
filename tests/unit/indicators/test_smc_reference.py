"""Smart Money Concepts against the `smartmoneyconcepts` package (a test dependency), on the shipped
BTC/USDT 1m bars, where the two definitions agree; and evidence of where the package looks ahead
(its values on early rows change when later rows are removed), which ours never do."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import pandas as pd
import pytest

from backtester.data.bars import load_bars
from backtester.indicators import smc, smc_zones

with contextlib.redirect_stdout(io.StringIO()):  # the package prints a banner on import
    reference = pytest.importorskip("smartmoneyconcepts").smc

BARS = "golden/data/binance_BTC-USDT_1m.parquet"
SWING = 5


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    bars = load_bars(BARS).frame.head(6_000)
    table = bars.to_pandas()
    table.index = pd.to_datetime(table["ts"], utc=True).dt.tz_localize(None)
    return table[["open", "high", "low", "close", "volume"]]


def columns(table: pd.DataFrame) -> list[np.ndarray]:
    return [table[c].to_numpy() for c in ("open", "high", "low", "close")]


def test_fair_value_gaps_equal_the_packages_one_bar_later(frame: pd.DataFrame) -> None:
    theirs = reference.fvg(frame.reset_index(drop=True))
    at = np.flatnonzero(~np.isnan(theirs["FVG"].to_numpy()))
    zones = smc_zones.fvg_zones(*columns(frame))
    # The package marks a gap on its middle bar, which is known only when the next bar closes.
    np.testing.assert_array_equal(zones["formed"].to_numpy(), at + 1)
    np.testing.assert_array_equal(zones["direction"].to_numpy(), theirs["FVG"].to_numpy()[at])
    np.testing.assert_array_equal(zones["top"].to_numpy(), theirs["Top"].to_numpy()[at])
    np.testing.assert_array_equal(zones["bottom"].to_numpy(), theirs["Bottom"].to_numpy()[at])
    mitigated = zones["mitigated"].fill_null(0).to_numpy()
    np.testing.assert_array_equal(mitigated, theirs["MitigatedIndex"].to_numpy()[at])
    gaps = smc.fvg(*columns(frame))
    np.testing.assert_array_equal(np.flatnonzero(gaps.direction), at + 1)


def test_every_package_swing_is_one_of_ours_confirmed_swing_length_bars_later(
    frame: pd.DataFrame,
) -> None:
    theirs = reference.swing_highs_lows(frame.reset_index(drop=True), swing_length=SWING)
    kind = theirs["HighLow"].to_numpy()
    n = len(kind)
    ours = smc.swings(frame["high"].to_numpy(), frame["low"].to_numpy(), SWING)
    # The package turns the first and last bars into swings; and it can only know a pivot SWING
    # bars after it, so the last SWING bars cannot have confirmed ones.
    inner = np.arange(1, n - SWING)
    highs = inner[kind[inner] == 1]
    lows = inner[kind[inner] == -1]
    assert len(highs) > 100 and len(lows) > 100
    np.testing.assert_array_equal(ours.high[highs + SWING], frame["high"].to_numpy()[highs])
    np.testing.assert_array_equal(ours.low[lows + SWING], frame["low"].to_numpy()[lows])
    # Ours keep the pivots the package drops afterwards because a later pivot was higher (lower).
    assert np.isfinite(ours.high).sum() > len(highs)


def test_previous_day_high_and_low_equal_the_packages_after_each_days_first_bar(
    frame: pd.DataFrame,
) -> None:
    daily = load_bars(BARS).frame.head(6_000)
    theirs = reference.previous_high_low(frame, time_frame="1D")
    ours = smc.previous_high_low(daily["high"], daily["low"], daily["ts"], "1d")
    day = daily["ts"].to_numpy() // 86_400_000_000_000
    first_of_day = np.concatenate(([True], day[1:] != day[:-1]))
    known = ~np.isnan(ours.high) & ~first_of_day
    assert known.sum() > 4_000
    # The package keeps float32; and on a day's first bar it still shows the day before yesterday.
    np.testing.assert_array_equal(
        ours.high[known].astype(np.float32), theirs["PreviousHigh"].to_numpy()[known]
    )
    np.testing.assert_array_equal(
        ours.low[known].astype(np.float32), theirs["PreviousLow"].to_numpy()[known]
    )


def _changes_on_a_prefix(compute: Any, frame: pd.DataFrame, keep: int) -> bool:
    whole = compute(frame.reset_index(drop=True)).to_numpy(dtype=np.float64)
    part = compute(frame.iloc[:keep].reset_index(drop=True)).to_numpy(dtype=np.float64)
    return not np.array_equal(whole[: keep - 1], part[: keep - 1], equal_nan=True)


@pytest.mark.parametrize(
    "name",
    ["fvg", "swing_highs_lows", "bos_choch", "order_blocks", "liquidity"],
)
def test_the_package_looks_ahead_where_documented(name: str, frame: pd.DataFrame) -> None:
    table = frame.iloc[:2_000]

    def swings(f: pd.DataFrame) -> pd.DataFrame:
        return reference.swing_highs_lows(f, swing_length=SWING)

    compute = {
        "fvg": reference.fvg,
        "swing_highs_lows": swings,
        "bos_choch": lambda f: reference.bos_choch(f, swings(f)),
        "order_blocks": lambda f: reference.ob(f, swings(f)),
        "liquidity": lambda f: reference.liquidity(f, swings(f)),
    }[name]
    assert any(_changes_on_a_prefix(compute, table, keep) for keep in range(400, 2_000, 200))
