"""Download candles (of trades or of a contract's mark price) or funding rates through ccxt into the
catalog, resuming whatever is missing.

The catalog itself is the checkpoint. Each series manifest records the ranges already known
complete (`coverage`); a fetch requests only the parts of [since, until) outside them, pages forward
with since/limit (never ccxt's `paginate`, which is anchored to the wall clock without `until`),
and commits every `flush_rows` rows through `write_series`, which extends the coverage in the same
atomic manifest update. So a second fetch of the same range makes no request, and after Ctrl-C, a
crash or kill -9 the next run starts at the last commit (Ctrl-C commits what it holds first).
Overlapping or repeated rows are de-duplicated by the write (the later row wins). An error that
ends a fetch commits the pages already received first, so nothing fetched is thrown away.

An empty page before the end of the range is asked for again (`empty_page_retries`): a well-formed
`[]` may be a glitch as much as the exchange's answer. If it stays empty, one probe of the range's
last page tells whether the exchange has bars further on: if not, the rest of the range has none
(at the live edge it is left uncovered, as bars may still arrive; in the past it is covered and
recorded as a gap); if so, paging moves on a page-length at a time until bars appear, and the span
skipped is recorded as a gap. The manifest's gaps are computed from the stored rows within the
coverage, so coverage never claims bars that are not stored without a gap saying so.

Bars whose period has not ended (open time + timeframe after now) are still open and never stored;
this and reading the wall clock for "now" are why this module is exempt from the wall-clock ban.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec
import polars as pl
import structlog

from backtester.data.atomic import check_writable
from backtester.data.connection import Connection
from backtester.data.errors import DataError, FetchError
from backtester.data.fetch_exchange import ExchangeClient, TransientError, UnreachableError
from backtester.data.layout import DEFAULT_ROOT, FUNDING, Price, SeriesKey
from backtester.data.series_manifest import Range, SourceEntry, load_manifest, missing_ranges
from backtester.data.store import write_series
from backtester.data.timeframes import ceil_to, floor_to, format_ms, parse_utc_ms, timeframe_ms
from backtester.data.validation import DEFAULT_SPIKE_THRESHOLD, FUNDING_COLUMNS, OHLCV_COLUMNS
from backtester.progress import Progress, bar_wanted

T = TypeVar("T")
log = structlog.get_logger("backtester.data.fetch")


class FetchOptions(Connection, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything a fetch needs; the command-line flags and a TOML `[fetch]` table map onto it."""

    exchange: str
    symbol: str
    since: str | int
    until: str | int | None = None
    timeframe: str = "1m"
    market: Literal["spot", "swap"] = "spot"
    kind: Literal["ohlcv", "mark", "funding"] = "ohlcv"
    root: str = DEFAULT_ROOT
    empty_page_retries: int = 2
    page_limit: int = 1000
    flush_rows: int = 50_000
    spike_threshold: float = DEFAULT_SPIKE_THRESHOLD
    drop_invalid: bool = False
    funding_interval: str = "8h"
    close_margin_ms: int = 5_000


class FetchSummary(msgspec.Struct, frozen=True):
    series: str
    ranges_requested: tuple[Range, ...]
    requests: int
    retries: int
    rows_received: int
    rows_stored: int
    first_ms: int | None
    last_ms: int | None
    gaps: int
    # Spans inside the requested ranges where the exchange answered with no bars at all.
    empty_ranges: tuple[Range, ...] = ()


class Retrier:
    """Exponential backoff for `TransientError` failures, honouring the server's Retry-After."""

    def __init__(self, options: Connection, sleep: Callable[[float], None]) -> None:
        self.options = options
        self.sleep = sleep
        self.retries = 0

    def __call__(self, attempt_once: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return attempt_once()
            except UnreachableError as exc:
                if attempt + 1 >= self.options.unreachable_attempts:
                    raise FetchError(
                        f"cannot reach the exchange: {exc} ({attempt + 1} attempts). Offline? "
                        "Check the network, DNS or proxy settings, or --api-url"
                    ) from exc
                self.backoff(attempt, str(exc))
                attempt += 1
            except TransientError as exc:
                if attempt >= self.options.max_retries:
                    raise FetchError(f"giving up after {attempt + 1} attempts: {exc}") from exc
                if (
                    exc.retry_after_s is not None
                    and exc.retry_after_s > self.options.max_retry_after_s
                ):
                    raise FetchError(
                        f"the exchange asks to wait {exc.retry_after_s:.0f} s "
                        f"(more than max_retry_after_s): {exc}"
                    ) from exc
                self.backoff(attempt, str(exc), at_least_s=exc.retry_after_s)
                attempt += 1

    def backoff(self, attempt: int, reason: str, *, at_least_s: float | None = None) -> None:
        """Sleep before retry number `attempt + 1` (counted from 0)."""
        base = self.options.retry_base_ms * 2**attempt / 1000
        delay = min(base, self.options.retry_max_ms / 1000)
        if at_least_s is not None:
            delay = max(delay, at_least_s)
        self.retries += 1
        log.warning("fetch retry", attempt=attempt + 1, delay_s=round(delay, 3), error=reason)
        self.sleep(delay)


def fetch(
    options: FetchOptions,
    *,
    client: ExchangeClient | None = None,
    now_ms: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    interactive: bool | None = None,
) -> FetchSummary:
    """Bring the catalog series up to date for [since, until) (until defaults to now)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    for name in ("page_limit", "flush_rows"):
        if getattr(options, name) < 1:
            raise DataError(f"{name} must be at least 1")
    if options.kind != "ohlcv" and options.market != "swap":
        what = "funding rates" if options.kind == "funding" else "mark-price candles"
        raise FetchError(f"{what} exist for contracts only: pass --market swap")
    interval = options.funding_interval if options.kind == "funding" else options.timeframe
    step = timeframe_ms(interval)
    window, live = _window(options, step, now)  # bad dates fail here, before any request
    check_writable(Path(options.root), "catalog")  # so is a catalog that cannot be written
    client = client or ExchangeClient.over(options.exchange, options.market, options)
    retry = Retrier(options, sleep)
    symbol = retry(lambda: client.resolve_symbol(options.symbol))
    if options.kind != "funding":
        client.check_timeframe(options.timeframe)
        price: Price = "mark" if options.kind == "mark" else "trade"
        key = SeriesKey(options.exchange, options.market, symbol, options.timeframe, price)
    else:
        key = SeriesKey(options.exchange, options.market, symbol, FUNDING)
    root = Path(options.root)
    stored = load_manifest(root, key)
    todo = missing_ranges(window, stored.coverage if stored else ())
    job = _SeriesFetch(
        options=options, client=client, retry=retry, key=key, symbol=symbol, step=step, root=root
    )
    progress = Progress(
        sum(b - a for a, b in todo) // step,
        label=key.label(),
        unit="bar",
        bar=bar_wanted(interactive),
        log_event="fetch progress",
        done_event="fetch finished",
    )
    log.info(
        "fetch plan",
        series=key.label(),
        window=f"{format_ms(window[0])} .. {format_ms(window[1])}",
        missing=[f"{format_ms(a)} .. {format_ms(b)}" for a, b in todo] or "nothing",
    )
    if todo:
        try:
            for start, end in todo:
                job.fetch_range(start, end, progress, live=live and end == window[1])
        finally:
            progress.close()
    final = load_manifest(root, key)
    return FetchSummary(
        series=key.label(),
        ranges_requested=tuple(todo),
        requests=job.requests,
        retries=retry.retries,
        rows_received=job.rows_received,
        rows_stored=final.rows if final else 0,
        first_ms=final.first_ms if final else None,
        last_ms=final.last_ms if final else None,
        gaps=len(final.gaps) if final else 0,
        empty_ranges=tuple(job.empty_ranges),
    )


def _window(options: FetchOptions, step: int, now: int) -> tuple[Range, bool]:
    """The range to bring up to date, and whether its end is the newest closed bar (or now)."""
    since = parse_utc_ms(str(options.since))
    until = now if options.until is None else min(parse_utc_ms(str(options.until)), now)
    if options.kind != "funding":
        # Only bars that have closed: the one opening at floor(now) is still forming. The margin
        # covers a local clock running a little ahead of the exchange's.
        closed = floor_to(now - options.close_margin_ms, step)
        start, end = ceil_to(since, step), min(floor_to(until, step), closed)
        live = end == closed
    else:
        start, end = since, until
        live = end == now
    if start >= end:
        raise DataError(
            f"nothing to fetch between {format_ms(since)} and {format_ms(until)} "
            "(since must be before until and before now)"
        )
    return (start, end), live


class _SeriesFetch:
    """Pages through one missing range and commits as it goes."""

    def __init__(
        self,
        *,
        options: FetchOptions,
        client: ExchangeClient,
        retry: Retrier,
        key: SeriesKey,
        symbol: str,
        step: int,
        root: Path,
    ) -> None:
        self.options = options
        self.client = client
        self.retry = retry
        self.key = key
        self.symbol = symbol
        self.step = step
        self.root = root
        self.requests = 0
        self.rows_received = 0
        self.empty_ranges: list[Range] = []
        self.source = SourceEntry(kind="ccxt", detail=client.describe())

    def fetch_range(self, start: int, end: int, progress: Progress, *, live: bool) -> None:
        """Fetch [start, end); `live` when `end` is the newest closed bar, where an exchange that
        has no bars yet may still publish them."""
        cursor = committed = start
        pending: list[Any] = []
        try:
            while cursor < end:
                rows = self._page_or_confirmed_empty(cursor, end)
                if not rows:
                    found = self._bars_after_empty(cursor, end)
                    if found is None:
                        break
                    rows = found
                    self._record_empty(cursor, int(min(r[0] for r in rows)))
                after = self._next_cursor(rows)
                self.rows_received += len(rows)
                progress.advance(
                    (after - cursor) // self.step, rows=self.rows_received, to=format_ms(after)
                )
                pending.extend(rows)
                cursor = after
                if len(pending) >= self.options.flush_rows:
                    batch, pending = pending, []
                    self._commit(batch, (committed, cursor))
                    committed = cursor
        except BaseException:
            # Keep what arrived (Ctrl-C, or retries exhausted): the next run resumes from here
            # instead of the last flush.
            if pending:
                self._commit(pending, (committed, cursor))
            raise
        covered_to = end
        if cursor < end:
            if live:
                covered_to = cursor  # bars may still arrive: asked for again next time
                log.info("fetch no bars yet", series=self.key.label(), since=format_ms(cursor))
            else:
                self._record_empty(cursor, end)
        if pending or covered_to > committed:
            self._commit(pending, (committed, covered_to))
        progress.advance((end - cursor) // self.step, to=format_ms(end))

    def _page_or_confirmed_empty(self, cursor: int, end: int) -> list[Any]:
        """The page from `cursor`; an empty one is asked for again before it is believed."""
        rows = self._request(cursor, end)
        for attempt in range(self.options.empty_page_retries):
            if rows:
                break
            self.retry.backoff(
                attempt, f"empty page from {format_ms(cursor)}, before {format_ms(end)}"
            )
            rows = self._request(cursor, end)
        return rows

    def _bars_after_empty(self, cursor: int, end: int) -> list[Any] | None:
        """After the exchange insisted on an empty page at `cursor`: the first page with bars
        further on, or None if it has none before `end`. An exchange that pages by fixed windows
        answers nothing for a window inside a long outage, though bars follow it."""
        window = self.options.page_limit * self.step
        if end - window <= cursor or not self._request(end - window, end):
            return None
        probe = cursor + window
        while probe < end:
            rows = self._request(probe, end)
            if rows:
                return rows
            probe += window
        return None

    def _record_empty(self, start: int, end: int) -> None:
        if end <= start:
            return
        self.empty_ranges.append((start, end))
        log.warning(
            "fetch gap at the exchange",
            series=self.key.label(),
            start=format_ms(start),
            end=format_ms(end),
            note="no bars there after retries: recorded as a gap",
        )

    def _request(self, cursor: int, end: int) -> list[Any]:
        rows = self.retry(functools.partial(self._page, cursor, end))
        self.requests += 1
        return rows

    def _page(self, cursor: int, end: int) -> list[Any]:
        if self.key.kind == "ohlcv":
            raw: list[Any] = self.client.ohlcv_page(
                self.symbol,
                self.options.timeframe,
                cursor,
                end - 1,
                self.options.page_limit,
                mark=self.key.price == "mark",
            )
        else:
            raw = self.client.funding_page(self.symbol, cursor, end - 1, self.options.page_limit)
        rows = [r for r in raw if r[0] is not None and r[0] < end]
        # A page that ends before it was asked to start cannot advance the cursor: a stale or
        # misrouted response. Retrying is safe; accepting it would loop forever.
        if rows and max(r[0] for r in rows) < cursor:
            raise TransientError(f"stale page: asked from {cursor}, rows end at {rows[-1][0]}")
        return rows

    def _next_cursor(self, rows: list[Any]) -> int:
        last = int(max(r[0] for r in rows))
        return last + (self.step if self.key.kind == "ohlcv" else 1)

    def _commit(self, rows: list[Any], covered: Range) -> None:
        columns = OHLCV_COLUMNS if self.key.kind == "ohlcv" else FUNDING_COLUMNS
        schema = {c: pl.Int64 if c == "timestamp_ms" else pl.Float64 for c in columns}
        frame = pl.DataFrame(
            [list(r)[: len(columns)] for r in rows], schema=schema, orient="row", strict=False
        )
        manifest, report = write_series(
            self.root,
            self.key,
            frame,
            interval_ms=self.step,
            source=self.source,
            covered=[covered],
            spike_threshold=self.options.spike_threshold,
            drop_invalid=self.options.drop_invalid,
            label=f"{self.key.label()} from {self.client.id}",
        )
        log.info(
            "fetch committed",
            series=self.key.label(),
            rows=frame.height,
            covered_to=format_ms(covered[1]),
            stored=manifest.rows,
            duplicates=report.identical_duplicates + report.conflicting_duplicates,
        )
