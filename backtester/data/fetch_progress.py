"""Download progress: a redrawn bar on a terminal, a plain log line every few seconds otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

import structlog

from backtester.data.timeframes import format_ms

_BAR_WIDTH = 24
_REDRAW_S = 0.1


class FetchProgress:
    """Rows received, the time range covered so far and the rate, against the span to fetch."""

    def __init__(
        self,
        label: str,
        span_ms: int,
        *,
        stream: TextIO | None = None,
        interactive: bool | None = None,
        log_every_s: float = 5.0,
    ) -> None:
        self.label = label
        self.span_ms = max(span_ms, 1)
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.log_every_s = log_every_s
        self.log = structlog.get_logger("backtester.data.fetch")
        self.started = time.monotonic()
        self.last_shown = 0.0
        self.rows = 0
        self.done_ms = 0
        self.first_ms: int | None = None
        self.cursor_ms: int | None = None

    def update(self, *, rows: int, advanced_ms: int, first_ms: int, cursor_ms: int) -> None:
        self.rows += rows
        self.done_ms += advanced_ms
        if self.first_ms is None:
            self.first_ms = first_ms
        self.cursor_ms = cursor_ms
        now = time.monotonic()
        pause = _REDRAW_S if self.interactive else self.log_every_s
        if now - self.last_shown >= pause:
            self.last_shown = now
            self._show(now)

    def close(self) -> None:
        self._show(time.monotonic(), final=True)

    def _show(self, now: float, *, final: bool = False) -> None:
        elapsed = max(now - self.started, 1e-9)
        share = min(self.done_ms / self.span_ms, 1.0)
        covered = (
            f"{format_ms(self.first_ms)} -> {format_ms(self.cursor_ms)}"
            if self.first_ms is not None and self.cursor_ms is not None
            else "nothing yet"
        )
        rate = self.rows / elapsed
        if self.interactive:
            filled = round(share * _BAR_WIDTH)
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            line = (
                f"\r{self.label} [{bar}] {share:6.1%} {self.rows:,} rows  {covered}  "
                f"{rate:,.0f} rows/s"
            )
            self.stream.write(line + ("\n" if final else ""))
            self.stream.flush()
        else:
            self.log.info(
                "fetch finished" if final else "fetch progress",
                series=self.label,
                rows=self.rows,
                covered=covered,
                percent=round(share * 100, 1),
                rows_per_s=round(rate),
            )
