"""Base, quote and contract terms come from a ccxt unified symbol, so an instrument written as the
README writes it (`Instrument("BTC/USDT", tick_size=...)`) is complete."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from backtester import Backtest, Instrument
from backtester.domain.instrument import InstrumentError, InstrumentKind
from backtester.strategies import SmaCross
from tests.engine_support import bars_frame


@pytest.mark.parametrize(
    ("symbol", "base", "quote", "settle", "kind"),
    [
        ("BTC/USDT", "BTC", "USDT", "USDT", InstrumentKind.SPOT),
        ("ETH/BTC", "ETH", "BTC", "BTC", InstrumentKind.SPOT),
        ("BTC/USDT:USDT", "BTC", "USDT", "USDT", InstrumentKind.PERPETUAL),
        ("BTC/USD:BTC", "BTC", "USD", "BTC", InstrumentKind.PERPETUAL),
        ("ETH/USDT:USDT-241227", "ETH", "USDT", "USDT", InstrumentKind.FUTURE),
    ],
)
def test_currencies_and_kind_come_from_the_symbol(
    symbol: str, base: str, quote: str, settle: str, kind: InstrumentKind
) -> None:
    instrument = Instrument(symbol, tick_size=0.01, lot_size=0.00001, min_notional=5.0)
    assert (instrument.base, instrument.quote, instrument.settle) == (base, quote, settle)
    assert instrument.kind is kind


def test_a_dated_future_expires_at_0800_utc_on_its_date() -> None:
    expiry = Instrument("ETH/USDT:USDT-241227").expiry
    assert expiry == int(datetime(2024, 12, 27, 8, tzinfo=UTC).timestamp() * 1000)


def test_given_currencies_win_over_the_symbol() -> None:
    instrument = Instrument("XBTUSDT", base="BTC", quote="USDT")
    assert (instrument.base, instrument.quote) == ("BTC", "USDT")


def test_a_bad_date_suffix_says_what_it_should_look_like() -> None:
    with pytest.raises(InstrumentError, match="YYMMDD"):
        Instrument("BTC/USDT:USDT-2412")  # strptime alone reads it as 2024-01-02


def test_two_instruments_written_with_symbols_only_share_their_quote_in_one_run() -> None:
    closes = [100.0 + 10.0 * math.sin(i / 4.0) for i in range(80)]
    rows = [(c, c + 1.0, c - 1.0, c, 10.0) for c in closes]
    frames = {"BTC/USDT": bars_frame(rows), "ETH/USDT": bars_frame(rows)}
    instruments = {s: Instrument(s, tick_size=0.01, lot_size=0.00001) for s in frames}
    result = Backtest(frames, SmaCross, instrument=instruments, mode="dense").run(fast=2, slow=5)
    assert result.stats["trades"] > 0
