"""The engine package: the composition root that wires the event modules, the feed that drives them,
the recorder of orders and fills, the compiled order path, and the translation of config specs into
the objects a run uses."""

from backtester.engine.engine import Engine, EventModules, engine_for_config, run_config
from backtester.engine.setup import EngineSetup, Mode, SetupError

__all__ = [
    "Engine",
    "EngineSetup",
    "EventModules",
    "Mode",
    "SetupError",
    "engine_for_config",
    "run_config",
]
