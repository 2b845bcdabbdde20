"""The feed delivers bars in the order they close, finer first, and places scheduled events at their
own time after the bars closed by then; the journal samples a state without what a scheduled event
booked at the sampling time."""

from __future__ import annotations

import numpy as np
import polars as pl

from backtester.account.ledger import _booked_by
from backtester.domain.messages import Bar
from backtester.engine.feed import Feed

MINUTE_NS = 60 * 10**9
HOUR_NS = 60 * MINUTE_NS


def frame(n: int, step_ns: int) -> pl.DataFrame:
    ts = np.arange(n, dtype=np.int64) * step_ns
    price = 100.0 + np.arange(n, dtype=np.float64)
    return pl.DataFrame(
        {"ts": ts, "open": price, "high": price, "low": price, "close": price, "volume": price}
    )


def test_bars_are_delivered_as_they_close_the_finer_first() -> None:
    feed = Feed({"M": frame(120, MINUTE_NS), "H": frame(2, HOUR_NS)})
    delivered = [(bar.instrument, bar.ts_event, bar.ts_init) for bar in feed.bars()]
    assert delivered[59] == ("M", 59 * MINUTE_NS, HOUR_NS)
    assert delivered[60] == ("H", 0, HOUR_NS)  # right after the hour's last minute
    assert delivered[61] == ("M", HOUR_NS, HOUR_NS + MINUTE_NS)
    assert feed.timestamps() == [known for _, _, known in delivered]
    assert feed.timestamps() == sorted(feed.timestamps())
    # Equity points are the open times; each is known when its earliest bar closes.
    assert feed.timeline().tolist() == [k * MINUTE_NS for k in range(120)]
    assert feed.sample_times().tolist() == [(k + 1) * MINUTE_NS for k in range(120)]


def test_a_scheduled_event_comes_at_its_time_after_the_bars_closed_by_then() -> None:
    feed = Feed({"M": frame(120, MINUTE_NS), "H": frame(2, HOUR_NS)})
    on_the_hour, inside = object(), object()
    placed = feed.scheduled_ticks(
        [("H", 1, HOUR_NS, on_the_hour), ("H", 1, HOUR_NS + 90 * 10**9, inside)]
    )
    # After the 00:59 minute and the 00:00 hour (both close at 01:00), before the 01:00 minute;
    # the second after the 01:00 minute (closes 01:01), before the 01:01 one (closes 01:02).
    assert placed == [(61, HOUR_NS, on_the_hour), (62, HOUR_NS + 90 * 10**9, inside)]
    times, delivered = zip(*feed.ticks(placed), strict=True)
    assert delivered[61] is on_the_hour and delivered[63] is inside
    assert list(times) == sorted(times)
    assert [t for t, e in zip(times, delivered, strict=True) if isinstance(e, Bar)] == [
        bar.ts_init for bar in feed.bars()
    ]


def test_what_a_scheduled_event_books_at_a_close_belongs_to_the_next_state() -> None:
    # Bookings: a bar's at 10, a funding at 10 (after the bars closed then), a bar's at 20.
    ts = np.array([10, 10, 20], dtype=np.int64)
    after = np.array([False, True, False])
    at = _booked_by(ts, after, np.array([5, 10, 15, 20], dtype=np.int64))
    assert at.tolist() == [-1, 0, 1, 2]
    assert _booked_by(ts, np.zeros(3, dtype=bool), np.array([10], dtype=np.int64)).tolist() == [1]
