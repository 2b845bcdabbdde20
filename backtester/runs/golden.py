"""Golden cases: `golden/<case>/config.toml` and the `expected.json` (digest and every statistic) it
must reproduce exactly. `scripts/regen_golden.py` rewrites them; `tests/regression/` checks them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from backtester.config import ConfigError
from backtester.config_file import load_config
from backtester.engine import run_config
from backtester.runs.artifacts import encode_json, stats_document
from backtester.runs.inputs import load_data

CONFIG = "config.toml"
EXPECTED = "expected.json"


def cases(root: str | Path) -> list[Path]:
    """Every case directory under `root`, sorted by name."""
    return sorted(path.parent for path in Path(root).glob(f"*/{CONFIG}"))


def compute(case: Path) -> dict[str, Any]:
    """The case's digest and statistics, as they would be written to `expected.json`."""
    source = str(case / CONFIG)
    cfg = load_config(source)
    try:
        data = load_data(cfg)
        result = run_config(
            cfg,
            data.frames,
            data.repairs,
            marks=data.marks,
            funding=data.funding,
            timeframes=data.higher,
        )
    except ConfigError as exc:
        raise exc.in_file(source) from None
    return {"digest": result.digest, "stats": stats_document(result.stats)}


def read_expected(case: Path) -> dict[str, Any] | None:
    path = case / EXPECTED
    if not path.is_file():
        return None
    document: dict[str, Any] = msgspec.json.decode(path.read_bytes())
    return document


def write_expected(case: Path, computed: dict[str, Any], reason: str) -> None:
    (case / EXPECTED).write_bytes(encode_json({"reason": reason, **computed}))


def differences(expected: dict[str, Any] | None, computed: dict[str, Any]) -> list[str]:
    """What changed, one line per value; floats shown with repr so that 1 ulp is visible."""
    if expected is None:
        return ["new case"]
    lines = []
    if expected.get("digest") != computed["digest"]:
        lines.append(f"digest: {expected.get('digest')} -> {computed['digest']}")
    old: dict[str, Any] = expected.get("stats", {})
    new: dict[str, Any] = computed["stats"]
    for key in [*new, *(k for k in old if k not in new)]:
        before, after = old.get(key, "<absent>"), new.get(key, "<absent>")
        if before != after or type(before) is not type(after):
            lines.append(f"stats.{key}: {before!r} -> {after!r}")
    return lines
