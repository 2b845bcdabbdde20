"""Engine settings shared by the modules: frozen msgspec Structs, validated when decoded."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class IntrabarPath(StrEnum):
    """How price is assumed to move inside a bar when several resting orders could fill in it.

    `ohlc`: an up bar (close >= open) goes open -> low -> high -> close, a down bar open -> high -> low ->
    close. `pessimistic`: the extreme adverse to the position held comes first (low first when long,
    high first when flat or short), so a stop-loss beats a take-profit in the same bar.
    """

    OHLC = "ohlc"
    PESSIMISTIC = "pessimistic"


class FillConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    trade_on_close: bool = False
    intrabar: IntrabarPath = IntrabarPath.OHLC


class RiskConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Limits beyond the instrument's own; `None` disables a limit."""

    max_position_quantity: float | None = None
    max_position_notional: float | None = None
