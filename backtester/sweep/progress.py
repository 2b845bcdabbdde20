"""The sweep's progress line: done/total, failed, rate, ETA and the best point so far.

On a terminal the line is redrawn in place a few times a second; elsewhere (a log file, CI) one line
is printed every `every` seconds, so logs stay readable.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO


class Progress:
    def __init__(
        self,
        total: int,
        *,
        stat: str,
        maximize: bool,
        stream: TextIO | None = None,
        every: float = 10.0,
    ) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.stat = stat
        self.maximize = maximize
        self.best: tuple[float, dict[str, Any]] | None = None
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._every = 0.2 if self._tty else every
        self._started = time.monotonic()
        self._counted_from = 0
        self._last_draw = 0.0

    def resumed(self, done: int, failed: int) -> None:
        """Results from before this session: counted as done, left out of the rate."""
        self.done, self.failed = done, failed
        self._counted_from = done

    def add(self, ok: bool, stats: dict[str, Any] | None, params: dict[str, Any]) -> None:
        self.done += 1
        if not ok:
            self.failed += 1
        value = (stats or {}).get(self.stat)
        if isinstance(value, int | float) and not math.isnan(value):
            better = self.best is None or (
                value > self.best[0] if self.maximize else value < self.best[0]
            )
            if better:
                self.best = (float(value), params)

    def rate(self) -> float:
        elapsed = time.monotonic() - self._started
        return (self.done - self._counted_from) / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate()
        remaining = self.total - self.done
        eta = f"{remaining / rate:,.0f}s" if rate > 0 else "?"
        text = f"{self.done}/{self.total} done, {self.failed} failed, {rate:.2f} runs/s, ETA {eta}"
        if self.best is not None:
            shown = ", ".join(f"{k}={v}" for k, v in self.best[1].items())
            text += f", best {self.stat} {self.best[0]:.4g} ({shown})"
        return text

    def draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < self._every:
            return
        self._last_draw = now
        if self._tty:
            self._stream.write("\r\x1b[2K" + self.line())
        else:
            self._stream.write(self.line() + "\n")
        self._stream.flush()

    def close(self) -> None:
        self.draw(force=True)
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()
