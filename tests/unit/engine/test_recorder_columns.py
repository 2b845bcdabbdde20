"""The event path hands the round trips and the digest the fills as columns made from the
recorder's fills, and builds the fills frame when it is first read (adr/0026): the columns must be
what `fill_columns` reads from that frame, dtype for dtype and value for value."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from backtester import Backtest
from backtester.engine import Engine
from backtester.metrics.trades import FillColumns, fill_columns
from backtester.strategies import SmaCross
from tests.engine_support import bars_frame, scripted

ROWS = [(100.0 + i % 7, 101.0 + i % 7, 99.0 + i % 7, 100.5 + i % 7, 10.0) for i in range(60)]
OTHER = [(50.0 + i % 5, 51.0 + i % 5, 49.0 + i % 5, 50.5 + i % 5, 20.0) for i in range(60)]


def _same(made: FillColumns, read: FillColumns) -> None:
    for name in ("ts", "order_id", "codes", "buy", "price", "quantity", "fee"):
        ours, theirs = getattr(made, name), getattr(read, name)
        assert ours.dtype == theirs.dtype, name
        assert ours.tobytes() == theirs.tobytes(), name
    assert made.symbols == read.symbols
    ours_tags, their_tags = made.tags(), read.tags()
    assert ours_tags is not None and their_tags is not None
    assert ours_tags.equals(their_tags)


def _engines() -> list[Engine]:
    engines = [
        Backtest(bars_frame(ROWS), SmaCross, mode=mode).engine(fast=3, slow=8)
        for mode in ("dense", "signal")
    ]
    # Two instruments, the second one filled first, with tags: codes in order of first fill.
    two: Any = scripted(
        {
            2: [lambda s: s.buy(1.0, instrument="ETH/USDT", tag="eth")],
            4: [lambda s: s.buy(0.5, tag="btc"), lambda s: s.sell(0.5, instrument="ETH/USDT")],
            9: [lambda s: s.sell(0.5)],
        }
    )
    engines.append(
        Backtest({"BTC/USDT": bars_frame(ROWS), "ETH/USDT": bars_frame(OTHER)}, two).engine()
    )
    engines.append(Backtest(bars_frame(ROWS), scripted({})).engine())  # no fills at all
    return engines


@pytest.mark.parametrize("k", range(4))
def test_the_recorders_fill_columns_are_the_fills_frames(k: int) -> None:
    engine = _engines()[k]
    result = engine.run()
    assert not isinstance(result._fills, pl.DataFrame)  # not built by the run
    made = engine.events.recorder.deferred_fills().columns
    _same(made, fill_columns(result.fills))
    if k == 2:
        assert made.symbols == ["ETH/USDT", "BTC/USDT"]
        assert made.codes[0] == 0 and 1 in made.codes
    assert result.fills.height == len(made.ts)
