"""The import directions of the architecture, and the APIs banned inside the engine, checked with `ast`.

The maps below are the documentation: which component may import which. A component is a subpackage
of `backtester` (`backtester/risk/...` is `risk`) or a top-level module (`backtester/cli.py` is `cli`).
Every import counts, including those inside functions and under `TYPE_CHECKING`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "backtester"

# component -> the other components of ours it may import (its own package is always allowed).
ALLOWED_IMPORTS: dict[str, frozenset[str]] = {
    # The shared language and the generic infrastructure: nothing else of ours. `core` is generic and
    # does not even know the domain.
    "domain": frozenset(),
    "core": frozenset(),
    # Frozen settings; model specs in it may name domain types.
    "config": frozenset({"domain"}),
    # The account model: pure classes over domain types, which every module holding balances uses.
    "accounting": frozenset({"domain"}),
    # Order types: each type's validation, expected price, trigger and wake-up scan, over domain
    # types, shared by risk, the venue and the strategy API.
    "orders": frozenset({"domain"}),
    # The four bounded contexts on the bus: only core, domain, config and the account model, never
    # each other.
    "strategy": frozenset(
        {"core", "domain", "config", "compiled", "indicators", "accounting", "orders"}
    ),
    "risk": frozenset({"core", "domain", "config", "accounting", "orders"}),
    "execution": frozenset({"core", "domain", "config", "accounting", "orders"}),
    "account": frozenset({"core", "domain", "config", "accounting"}),
    # Data and metrics work on domain values and frames only (a download shows its progress).
    "data": frozenset({"domain", "progress"}),
    "metrics": frozenset({"domain", "compiled"}),
    # Progress bars and lines: infrastructure like `core`, knowing nothing of ours.
    "progress": frozenset(),
    # Compiled kernels: loops over plain arrays, knowing nothing of ours but the plain float rules
    # numba compiles into the order path's kernel: the account model's arithmetic and the domain's
    # (an instrument's grids).
    "compiled": frozenset({"accounting", "domain"}),
    # Indicator functions over columns: their kernels, and the data layer's timeframe lengths.
    "indicators": frozenset({"compiled", "data"}),
}

# The engine (composition root), public API, entry points and result assembly: they sit on top and may
# import any component (nothing in ALLOWED_IMPORTS may import them). `runs` and `config_file` are
# the run-management layer; `sweep` the parameter sweeps, `optimize` and `walk_forward` their notebook form; `report`
# the HTML pages and plots.
ON_TOP = frozenset(
    {
        "__init__",
        "__main__",
        "backtest",
        "cli",
        "config_file",
        "engine",
        "logs",
        "lookahead",
        "manifest",
        "optimize",
        "report",
        "results",
        "runs",
        "strategies",
        "sweep",
        "walk_forward",
    }
)

# Third-party packages confined to one component.
CONFINED_THIRD_PARTY = {
    "ccxt": "data",
    "nats": "sweep",
    "optuna": "sweep",
    "bokeh": "report",
    "numba": "compiled",
}

# Banned everywhere: the process-global `random` module.
BANNED_MODULES = frozenset({"random"})

# Wall clock, random ids and the legacy global numpy generator: banned outside these files.
BANNED_CALLS = frozenset(
    {
        "time.time",
        "time.time_ns",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        "uuid.uuid1",
        "uuid.uuid4",
    }
)
# Of numpy.random only the Generator API: every function of the legacy global generator is banned,
# and so is `default_rng`: generators are built from the run seed in core/rng.py and passed in.
NUMPY_RANDOM_ALLOWED = frozenset(
    {"Generator", "BitGenerator", "SeedSequence", "PCG64", "PCG64DXSM", "Philox", "SFC64"}
)


def wall_clock_exempt(path: Path) -> bool:
    rel = path.relative_to(PACKAGE)
    return (
        rel.as_posix() in ("cli.py", "manifest.py")
        or (rel.parts[0] == "data" and rel.name.startswith("fetch"))
        or rel.parts[0] == "sweep"
    )


# --- the walker -----------------------------------------------------------------------------------


def component_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = ["backtester", *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(
    tree: ast.AST, this_module: str, is_package: bool
) -> Iterator[tuple[int, str]]:
    """(line, absolute dotted name) of every import; `from a import b` yields `a.b`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = this_module if is_package else this_module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def our_component(dotted: str) -> str | None:
    """The component of ours a dotted import name refers to, or None if it is not ours."""
    parts = dotted.split(".")
    if parts[0] != "backtester":
        return None
    if len(parts) == 1:
        return "__init__"
    head = parts[1]
    if (PACKAGE / head).is_dir() or (PACKAGE / f"{head}.py").is_file():
        return head
    return "__init__"  # `from backtester import Backtest`: a name re-exported by the package root


def qualified_uses(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, fully qualified name) of every name and attribute chain, resolved through imports."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    aliases[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                qualified = f"{node.module}.{alias.name}"
                aliases[alias.asname or alias.name] = qualified
                yield node.lineno, qualified
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute | ast.Name):
            chain: list[str] = []
            current: ast.expr = node
            while isinstance(current, ast.Attribute):
                chain.append(current.attr)
                current = current.value
            if isinstance(current, ast.Name) and current.id in aliases:
                chain.append(aliases[current.id])
                yield node.lineno, ".".join(reversed(chain))


def banned_use(qualified: str) -> bool:
    if qualified in BANNED_CALLS:
        return True
    prefix = "numpy.random."
    if qualified.startswith(prefix):
        return qualified[len(prefix) :].split(".", maxsplit=1)[0] not in NUMPY_RANDOM_ALLOWED
    return False


def source_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def violations_of_directions(path: Path, tree: ast.AST) -> list[str]:
    component = component_of(path)
    allowed = ALLOWED_IMPORTS.get(component)
    found = []
    for line, dotted in imported_modules(tree, module_name(path), path.name == "__init__.py"):
        rel = f"{path.relative_to(PACKAGE.parent)}:{line}"
        target = our_component(dotted)
        if allowed is not None and target not in (None, component, *allowed):
            found.append(f"{rel}: {component} imports {dotted} ({target} is not allowed)")
        root = dotted.split(".")[0]
        if root in CONFINED_THIRD_PARTY and CONFINED_THIRD_PARTY[root] != component:
            found.append(
                f"{rel}: {root} may only be imported in backtester/{CONFINED_THIRD_PARTY[root]}"
            )
        if root in BANNED_MODULES:
            found.append(f"{rel}: the {root} module is banned (use a seeded numpy Generator)")
    return found


def violations_of_bans(path: Path, tree: ast.AST) -> list[str]:
    if wall_clock_exempt(path):
        return []
    rel = path.relative_to(PACKAGE.parent)
    return [
        f"{rel}:{line}: {name} is banned in the engine"
        for line, name in qualified_uses(tree)
        if banned_use(name)
    ]


# --- the rules, over the tree ---------------------------------------------------------------------


def test_every_component_is_in_the_map() -> None:
    components = {component_of(path) for path in source_files()}
    unknown = components - set(ALLOWED_IMPORTS) - ON_TOP
    assert not unknown, f"add these to ALLOWED_IMPORTS or ON_TOP in {__name__}: {sorted(unknown)}"
    assert set(ALLOWED_IMPORTS) <= components, "the map names components that no longer exist"


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_follow_the_allowed_directions(path: Path) -> None:
    assert violations_of_directions(path, parse(path)) == []


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_uses_no_wall_clock_random_ids_or_legacy_numpy_random(path: Path) -> None:
    assert violations_of_bans(path, parse(path)) == []


# --- the checker finds what it should -------------------------------------------------------------


def _directions(rel: str, source: str) -> list[str]:
    return violations_of_directions(PACKAGE / rel, ast.parse(source))


def _bans(rel: str, source: str) -> list[str]:
    return violations_of_bans(PACKAGE / rel, ast.parse(source))


@pytest.mark.parametrize(
    ("rel", "source"),
    [
        ("core/bus.py", "from backtester.domain.messages import Bar"),
        ("domain/messages.py", "import backtester.core.bus"),
        ("risk/engine.py", "from backtester.execution.venue import SimulatedVenue"),
        ("execution/venue.py", "from backtester.account import ledger"),
        ("strategy/base.py", "from backtester import engine"),
        ("strategy/base.py", "from backtester import Backtest"),
        ("account/ledger.py", "from ..risk import rules"),
        ("metrics/stats.py", "from backtester.core.digest import Digest"),
        ("data/bars.py", "from backtester.config import FillConfig"),
        ("execution/venue.py", "import ccxt"),
        ("data/bars.py", "import nats"),
        ("engine/engine.py", "import random"),
        ("core/rng.py", "from random import Random"),
    ],
)
def test_checker_reports_a_forbidden_import(rel: str, source: str) -> None:
    assert len(_directions(rel, source)) == 1


@pytest.mark.parametrize(
    ("rel", "source"),
    [
        ("risk/engine.py", "from backtester.core.bus import MessageBus\nfrom . import rules"),
        ("strategy/library/sma_cross.py", "from backtester.strategy.base import Strategy"),
        ("data/fetch_exchange.py", "import ccxt"),
        ("engine/engine.py", "from backtester.execution.venue import SimulatedVenue"),
    ],
)
def test_checker_accepts_an_allowed_import(rel: str, source: str) -> None:
    assert _directions(rel, source) == []


@pytest.mark.parametrize(
    ("source", "banned"),
    [
        ("import time\ntime.time()", "time.time"),
        ("from time import time\nt = time()", "time.time"),
        ("from time import time_ns", "time.time_ns"),
        ("import datetime\ndatetime.datetime.now()", "datetime.datetime.now"),
        ("from datetime import datetime\ndatetime.now()", "datetime.datetime.now"),
        ("from datetime import date as d\nd.today()", "datetime.date.today"),
        ("import uuid\nuuid.uuid4()", "uuid.uuid4"),
        ("import numpy as np\nnp.random.seed(1)", "numpy.random.seed"),
        ("import numpy as np\nx = np.random.rand(3)", "numpy.random.rand"),
        ("import numpy.random as npr\nnpr.choice([1, 2])", "numpy.random.choice"),
        ("from numpy.random import default_rng", "numpy.random.default_rng"),
        ("from numpy import random\nrandom.shuffle([1])", "numpy.random.shuffle"),
    ],
)
def test_checker_reports_a_banned_call_in_the_engine(source: str, banned: str) -> None:
    found = _bans("execution/venue.py", source)
    assert found
    assert all(f" {banned} is banned" in line for line in found), found


def test_checker_allows_seeded_generators_and_exempt_files() -> None:
    seeded = (
        "import numpy as np\ng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(1)))"
    )
    assert _bans("core/rng.py", seeded) == []
    wall_clock = "import time\nfrom datetime import datetime\ntime.time()\ndatetime.now()"
    for exempt in (
        "cli.py",
        "manifest.py",
        "data/fetch.py",
        "data/fetch_exchange.py",
        "sweep/x.py",
    ):
        assert _bans(exempt, wall_clock) == []
    assert len(_bans("data/bars.py", wall_clock)) == 2
