"""Indicator overlays on the price chart: which a run gets, and how each is drawn.

A built-in strategy names the overlays that explain it (`report_overlays`, e.g. `("smc",)`), and
an overlay takes the strategy parameters it shares with it (the swing length); `report --overlay`
asks for one on any run."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import polars as pl

from backtester.report.smc_overlay import add_smc
from backtester.strategies import BUILTIN

Draw = Callable[[Any, pl.DataFrame, Mapping[str, Any]], None]
OVERLAYS: dict[str, tuple[Draw, tuple[str, ...]]] = {"smc": (add_smc, ("swing_length",))}


def overlays_for(
    strategy: str, params: Mapping[str, Any], requested: Iterable[str] = ()
) -> dict[str, dict[str, Any]]:
    """Overlay name -> its parameters, for a run of `strategy` with `params`."""
    declared = getattr(BUILTIN.get(strategy), "report_overlays", ())
    names = list(dict.fromkeys([*declared, *requested]))
    unknown = [name for name in names if name not in OVERLAYS]
    if unknown:
        raise ValueError(f"unknown overlay {unknown[0]!r}; known: {', '.join(OVERLAYS)}")
    return {
        name: {key: params[key] for key in OVERLAYS[name][1] if key in params} for name in names
    }


def draw_overlays(fig: Any, bars: pl.DataFrame, overlays: Mapping[str, Mapping[str, Any]]) -> None:
    for name, params in overlays.items():
        OVERLAYS[name][0](fig, bars, params)
