"""Engine settings: what the engine needs besides data, instruments, strategy and models."""

from __future__ import annotations

from typing import Literal

import msgspec

from backtester.config import FillConfig, RiskConfig, StatsConfig

Mode = Literal["auto", "dense", "signal", "compiled"]
AccountKind = Literal["cash", "margin"]


class EngineSetup(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`mode`: "dense" visits every bar; "signal" only the bars the strategy declares active
    (`Strategy.active_bars`) and those where a resting order can fill; "compiled" runs a
    `SignalStrategy`'s plan on the compiled order path (adr/0011). All give identical results.
    "auto" takes the compiled path where it applies, else signal mode when the strategy declares
    active bars and the run has one stream, else dense."""

    initial_cash: float = 10_000.0
    # None: a margin account when the instruments are contracts, else a cash account.
    account: AccountKind | None = None
    fill: FillConfig = FillConfig()
    risk: RiskConfig = RiskConfig()
    stats: StatsConfig = StatsConfig()
    seed: int = 0
    max_steps_per_tick: int = 100_000
    mode: Mode = "auto"


class SetupError(ValueError):
    """A run that cannot be built as asked (a mode that does not apply, inconsistent instruments)."""
