"""A strategy module whose import leaves a trace: a worker that must not import it can be shown not
to have (`BACKTESTER_TEST_IMPORT_MARKER` names the file written at import)."""

from __future__ import annotations

import os
from pathlib import Path

from backtester.strategies import SmaCross

_marker = os.environ.get("BACKTESTER_TEST_IMPORT_MARKER")
if _marker:
    with Path(_marker).open("a", encoding="utf-8") as handle:
        handle.write(f"imported by {os.getpid()}\n")


class Marked(SmaCross):
    pass
