"""structlog setup: readable lines on a terminal, JSON lines on request or when not a terminal."""

from __future__ import annotations

import logging
import sys

import structlog

from backtester.progress import set_json_logs


def configure_logging(*, json: bool = False, level: int = logging.INFO) -> None:
    # JSON lines on stderr are for machines: no progress bar is drawn between them.
    set_json_logs(json)
    renderer: structlog.typing.Processor
    if json:
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # Look up sys.stderr at each use: a stream captured at configure time may be closed later
        # (an embedding application or a test harness swapping streams).
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)
