"""The data package's edges: what it may import, and the one module that talks to ccxt."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "backtester" / "data"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_data_imports_only_domain_and_data_of_our_own_modules() -> None:
    # And the progress bar a download shows (infrastructure that knows nothing of ours).
    for path in sorted(PACKAGE.glob("*.py")):
        ours = {m for m in imported_modules(path) if m.split(".")[0] == "backtester"}
        allowed = {
            m
            for m in ours
            if m.startswith(("backtester.data", "backtester.domain")) or m == "backtester.progress"
        }
        assert ours == allowed, f"{path.name} imports {sorted(ours - allowed)}"


def test_ccxt_is_imported_by_exactly_one_module() -> None:
    users = sorted(
        path.name
        for path in PACKAGE.glob("*.py")
        if any(m.split(".")[0] == "ccxt" for m in imported_modules(path))
    )
    assert users == ["fetch_exchange.py"]
