"""The sweep's progress: points done out of all, failed, and the best point so far, shown through the
one progress bar of the package (`backtester.progress`): a bar on a terminal, a log line every ten
seconds elsewhere (a log file, CI)."""

from __future__ import annotations

import math
from typing import Any, TextIO

from backtester.progress import Progress as Bar
from backtester.progress import bar_wanted

_LOG_EVERY_S = 10.0


class Progress:
    def __init__(
        self,
        total: int,
        *,
        stat: str,
        maximize: bool,
        stream: TextIO | None = None,
        bar: bool | None = None,
    ) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.stat = stat
        self.maximize = maximize
        self.best: tuple[float, dict[str, Any]] | None = None
        self._stream = stream
        self._drawn = bar_wanted(bar, stream)
        self._bar: Bar | None = None

    def resumed(self, done: int, failed: int) -> None:
        """Results from before this session: counted as done (tqdm leaves them out of the rate)."""
        self.done, self.failed = done, failed

    def add(self, ok: bool, stats: dict[str, Any] | None, params: dict[str, Any]) -> None:
        bar = self._shown()  # started from the results before this one
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
        bar.advance(1, **self._fields())

    def draw(self, *, force: bool = False) -> None:
        """Show the bar before the first result arrives (tqdm redraws it as results come)."""
        self._shown()

    def close(self) -> None:
        self._shown().close()

    def _shown(self) -> Bar:
        if self._bar is None:
            self._bar = Bar(
                self.total,
                label="sweep",
                unit="run",
                bar=self._drawn,
                initial=self.done,
                stream=self._stream,
                log_event="sweep progress",
                done_event="sweep finished",
                log_every_s=_LOG_EVERY_S,
            )
            self._bar.fields.update(self._fields())
        return self._bar

    def _fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"failed": self.failed}
        if self.best is not None:
            shown = ", ".join(f"{k}={v}" for k, v in self.best[1].items())
            fields["best"] = f"{self.stat} {self.best[0]:.4g} ({shown})"
        return fields
