"""Progress of long work (a run over many bars, a download, a sweep): one library, tqdm (adr/0012),
and one rule for when a bar is drawn.

A bar is drawn on an interactive terminal only: not in CI (`CI` set), not with JSON logs, not when
stderr is a file or a pipe, and in a notebook only when asked for. Where no bar is drawn, work that
asks for it gets a log event every few seconds instead, so a long download in a cron job or CI log is
not silent either. Progress reads the wall clock to throttle what it shows; nothing it does reaches a
result.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO, TypeVar

import structlog

T = TypeVar("T")
_LOG_EVERY_S = 5.0


_json_logs = False


def set_json_logs(json: bool) -> None:
    """Told by the logging setup: with JSON log lines on stderr, no bar is drawn there."""
    global _json_logs  # noqa: PLW0603 - the process's one logging setup
    _json_logs = json


def in_notebook() -> bool:
    """True inside a Jupyter kernel (not a plain IPython terminal, where there is nothing inline)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ipython = shell.get_ipython()
    return ipython is not None and "IPKernelApp" in getattr(ipython, "config", {})


def bar_wanted(requested: bool | None = None, stream: TextIO | None = None) -> bool:
    """Whether to draw a bar: `requested` when given, else only on an interactive terminal."""
    if requested is not None:
        return requested
    if os.environ.get("CI") or _json_logs or in_notebook():
        return False
    target = stream or sys.stderr
    return bool(getattr(target, "isatty", lambda: False)())


class Progress:
    """Units done out of `total`, drawn as a bar, logged every `log_every_s` seconds, or neither.

    `log_event`: the event name of the periodic log lines when no bar is drawn (None: no lines),
    `done_event` the one of the last line, at `close()`.
    """

    def __init__(
        self,
        total: int | None,
        *,
        label: str,
        unit: str,
        bar: bool,
        log_event: str | None = None,
        done_event: str | None = None,
        log_every_s: float = _LOG_EVERY_S,
        initial: int = 0,
        stream: TextIO | None = None,
    ) -> None:
        self.total = total
        self.label = label
        self.done = initial
        self.fields: dict[str, Any] = {}
        self._log_event = log_event
        self._done_event = done_event or (None if log_event is None else f"{log_event} finished")
        self._log_every_s = log_every_s
        self._last_log = time.monotonic()
        self._log = structlog.get_logger("backtester.progress")
        self._bar: Any = None
        if bar:
            self._bar = _tqdm(stream)(
                total=total,
                desc=label,
                unit=unit,
                initial=initial,
                file=stream or sys.stderr,
                dynamic_ncols=True,
                leave=True,
                mininterval=0.2,
            )

    @property
    def drawn(self) -> bool:
        return self._bar is not None

    def advance(self, n: int = 1, **fields: Any) -> None:
        self.done += n
        if fields:
            self.fields.update(fields)
        if self._bar is not None:
            if fields:
                self._bar.set_postfix(self._shown(), refresh=False)
            self._bar.update(n)
        elif self._log_event is not None:
            now = time.monotonic()
            if now - self._last_log >= self._log_every_s:
                self._last_log = now
                self._emit(self._log_event)

    def advance_to(self, done: int, **fields: Any) -> None:
        self.advance(max(done - self.done, 0), **fields)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.set_postfix(self._shown(), refresh=False)
            self._bar.close()
            self._bar = None
        elif self._done_event is not None:
            self._emit(self._done_event)
            self._done_event = None  # closed once

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def iterate(self, items: Iterable[T], *, every: int = 1024) -> Iterator[T]:
        """`items`, advancing by `every` items at a time (cheap enough for a loop over bars)."""
        count = 0
        for item in items:
            yield item
            count += 1
            if count == every:
                self.advance(count)
                count = 0
        if count:
            self.advance(count)

    def _shown(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.fields.items()}

    def _emit(self, event: str) -> None:
        share = round(100.0 * self.done / self.total, 1) if self.total else None
        self._log.info(
            event, label=self.label, done=self.done, total=self.total, percent=share, **self.fields
        )


def _tqdm(stream: TextIO | None) -> Callable[..., Any]:
    # Imported when a bar is drawn only: most runs draw none.
    if stream is None and in_notebook():
        from tqdm.auto import tqdm as notebook_tqdm

        drawn: Callable[..., Any] = notebook_tqdm
        return drawn
    from tqdm import tqdm

    terminal: Callable[..., Any] = tqdm
    return terminal
