"""Which strategies a worker may run: the strategy a job names is imported by module path, which is
code execution by design for whoever can publish jobs, so a worker imports only modules it allows.

Allowed are the built-in strategies and the modules under any `--allow-strategy PREFIX` given to the
worker (a module path: `mystrats` allows `mystrats` and `mystrats.trend`, not `mystrats_old`). The
local workers of a sweep are allowed that sweep's own strategy modules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from backtester.sweep.config import SweepConfig

BUILTIN_MODULES = ("backtester.strategies", "backtester.strategy.library")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_NAME_KEY = "strategy.name"


def strategy_module(name: str) -> str | None:
    """The module a strategy name makes a worker import; None for a built-in name (no import)."""
    return name.partition(":")[0] if ":" in name else None


def refusal(name: str, prefixes: Sequence[str]) -> str | None:
    """Why a worker allowed `prefixes` must not import strategy `name`, or None if it may."""
    module = strategy_module(name)
    if module is None:
        return None
    if not _MODULE.match(module):
        return f"strategy {name!r} does not name a module path"
    for prefix in (*BUILTIN_MODULES, *prefixes):
        allowed = prefix.rstrip(".")
        if module == allowed or module.startswith(allowed + "."):
            return None
    return (
        f"strategy module {module!r} is not allowed on this worker "
        "(start it with --allow-strategy PREFIX to run it)"
    )


def check_prefixes(prefixes: Iterable[str]) -> list[str]:
    """The prefixes, each checked to be a module path."""
    checked = []
    for prefix in prefixes:
        if not _MODULE.match(prefix.rstrip(".")):
            raise ValueError(f"--allow-strategy {prefix!r}: expected a module path like mystrats")
        checked.append(prefix.rstrip("."))
    return checked


def sweep_strategy_modules(config: SweepConfig) -> list[str]:
    """The strategy modules a sweep's points name: its base strategy and any it sweeps over."""
    names: list[object] = []
    strategy = config.base.get("strategy")
    if isinstance(strategy, dict):
        names.append(strategy.get("name"))
    axis = config.grid.get(_NAME_KEY)
    if isinstance(axis, list):
        names.extend(axis)
    if config.random is not None:
        space = config.random.params.get(_NAME_KEY)
        if space is not None and space.choice is not None:
            names.extend(space.choice)
    modules = []
    for name in names:
        module = strategy_module(name) if isinstance(name, str) else None
        if module is not None and module not in modules:
            modules.append(module)
    return modules
