"""A signal strategy scripted by its parameters, and the cases the compiled-path identity tests
draw for it: bars with a signal per bar (and funding), marks off the bars, perpetuals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
import polars as pl
from hypothesis import strategies as st

from backtester import Backtest, Instrument, RunResult
from backtester.domain.instrument import MarginTier
from backtester.strategy.signal import SignalStrategy
from tests.engine_support import bars_frame
from tests.property.test_perpetual_runs import funding_series

Row = tuple[float, float, float, float, float]
PERPETUAL = "BTC/USDT:USDT"


class ScriptParams(msgspec.Struct, frozen=True):
    signal: list[int] = []
    entry: float = 1.0
    exit: float = 1.0
    short: bool = False


class Scripted(SignalStrategy[ScriptParams]):
    """Its signal, fractions and shorting come from the parameters."""

    Params = ScriptParams

    def on_start(self) -> None:
        self.entry_fraction = self.params.entry
        self.exit_fraction = self.params.exit
        super().on_start()

    def signals(self) -> np.ndarray:
        return np.array(self.params.signal, dtype=np.int8)


def scripted(rows: list[Row], params: dict[str, Any], **knobs: Any) -> Callable[[str], RunResult]:
    """`make(mode)`: the scripted strategy on the rows (1,000 of cash unless `knobs` say)."""
    knobs.setdefault("cash", 1_000.0)

    def make(mode: str) -> RunResult:
        return Backtest(bars_frame(rows), Scripted, mode=mode, **knobs).run(**params)  # type: ignore[arg-type]

    return make


def _signal_for(rows: list[Row]) -> st.SearchStrategy[list[int]]:
    return st.lists(st.sampled_from([-1, 0, 0, 1]), min_size=len(rows), max_size=len(rows))


def with_signal(
    rows: st.SearchStrategy[list[Row]],
) -> st.SearchStrategy[tuple[list[Row], list[int]]]:
    """Bars and a signal per bar (long and short entries, flat bars twice as often)."""
    return rows.flatmap(lambda drawn: st.tuples(st.just(drawn), _signal_for(drawn)))


def with_signal_and_funding(
    rows: st.SearchStrategy[list[Row]],
) -> st.SearchStrategy[tuple[list[Row], list[int], pl.DataFrame]]:
    """Bars, a signal per bar and a funding series over them."""
    return rows.flatmap(
        lambda drawn: st.tuples(st.just(drawn), _signal_for(drawn), funding_series(len(drawn)))
    )


def marks_for(rows: list[Row], skew: float) -> pl.DataFrame:
    """A mark series a little off the bars (same times and timeframe)."""
    return bars_frame([(o * skew, h * skew, low * skew, c * skew, v) for o, h, low, c, v in rows])


def perpetual_instruments(
    margin_mode: str, brackets: tuple[MarginTier, ...], leverages: list[float], **also: list[Any]
) -> st.SearchStrategy[Instrument]:
    """Linear perpetuals: a leverage of `leverages`, a whole or half contract, with or without
    the margin `brackets`, and each of Instrument's fields named in `also` drawn from its list."""
    return st.builds(
        lambda leverage, size, tiers, extra: Instrument(
            PERPETUAL,
            leverage=leverage,
            margin_mode=margin_mode,
            contract_size=size,
            margin_tiers=brackets if tiers else (),
            **extra,
        ),
        st.sampled_from(leverages),
        st.sampled_from([1.0, 0.5]),
        st.booleans(),
        st.fixed_dictionaries({field: st.sampled_from(values) for field, values in also.items()}),
    )


def perpetual_knobs(
    rows: list[Row],
    funding: pl.DataFrame | None,
    mark_skew: float | None,
    **knobs: Any,
) -> dict[str, Any]:
    """The run's knobs, with the funding series and a mark series `mark_skew` off the bars when
    they are given."""
    if funding is not None:
        knobs["funding"] = funding
    if mark_skew is not None:
        knobs["mark"] = marks_for(rows, mark_skew)
    return knobs
