"""The run manifest: which code, data, config and seed produced a result, and the files it left.

This is the one module that reads the wall clock (`started_at`, `finished_at`); nothing derived from
the clock feeds a result or an id.
"""

from __future__ import annotations

import hashlib
import inspect
import platform
import re
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec

import backtester
from backtester.core.digest import LEGACY_ALGORITHM
from backtester.data.atomic import sha256_file
from backtester.data.bars import RepairReport

MANIFEST_VERSION = 1
# What the engine imports; recorded when neither package metadata nor pyproject.toml is at hand.
CORE_DEPENDENCIES = ("msgspec", "numpy", "polars", "pyarrow", "structlog", "xxhash")
_PACKAGE_DIR = Path(backtester.__file__).resolve().parent
_REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class Partition(msgspec.Struct, frozen=True):
    path: str
    sha256: str
    rows: int


class DataInput(msgspec.Struct, frozen=True):
    """One input series. `sha256` is of the file's bytes, or for a catalog series of its partition
    list; `rows` counts rows as read, before any repair (the repair report says what it changed)."""

    symbol: str
    source: str
    path: str
    sha256: str
    rows: int
    first_ts: str
    last_ts: str
    repair: RepairReport | None = None
    partitions: list[Partition] | None = None
    # What the series is for its symbol: bars ("ohlcv"), mark-price candles, funding rates, or
    # the bars of a higher timeframe ("higher", with its `timeframe`).
    series: str = "ohlcv"
    timeframe: str | None = None


class InstrumentInput(msgspec.Struct, frozen=True):
    """An instrument built from a catalog markets snapshot (`from_catalog`): the snapshot it was
    read from and when that was fetched, and `sha256`, of the instrument as built, which the run
    id covers (a snapshot fetched again that lists the instrument unchanged names the same run)."""

    symbol: str
    snapshot: str
    snapshot_sha256: str
    fetched_at: str
    sha256: str


def instrument_sha256(instrument: Any) -> str:
    """The content hash of an instrument as built (its fields as sorted JSON)."""
    return hashlib.sha256(msgspec.json.encode(instrument, order="sorted")).hexdigest()


class CodeVersion(msgspec.Struct, frozen=True):
    """The code that ran. `code_sha256` covers every module of the package; a strategy imported from
    outside it is covered by `strategy_sha256`. Git facts are informational (null outside a checkout)."""

    package_version: str
    code_sha256: str
    strategy_sha256: str | None
    git_sha: str | None
    git_dirty: bool | None


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    manifest_version: int = MANIFEST_VERSION
    run_id: str
    config_id: str
    seed: int
    strategy: str
    git_sha: str | None
    git_dirty: bool | None
    package_version: str
    code_sha256: str
    strategy_sha256: str | None
    python: str
    platform: str
    dependencies: dict[str, str]
    data: list[DataInput]
    started_at: str
    finished_at: str
    digest: str
    outputs: dict[str, str]
    # What `digest` was computed with (backtester.core.digest); a manifest without it predates the
    # field and was digested with BLAKE2b-256.
    digest_algorithm: str = LEGACY_ALGORITHM
    # The account the run booked into, and what valued each instrument's positions: its mark-price
    # series ("mark") or its last traded price ("last").
    account: str = "cash"
    marked_by: dict[str, str] = {}
    instruments: list[InstrumentInput] = []

    @property
    def code(self) -> CodeVersion:
        return CodeVersion(
            package_version=self.package_version,
            code_sha256=self.code_sha256,
            strategy_sha256=self.strategy_sha256,
            git_sha=self.git_sha,
            git_dirty=self.git_dirty,
        )


def derive_run_id(
    config_id: str,
    data: list[DataInput],
    code: CodeVersion,
    instruments: Sequence[InstrumentInput] = (),
) -> str:
    """Content-derived: the same config, data and code give the same id on any machine, at any time.
    Git facts stay out, so a commit that touches no code (docs, goldens) does not rename runs.
    Instruments read from the catalog count like data (a config without them keeps its id)."""
    identity: dict[str, Any] = {
        "config_id": config_id,
        "data": [entry.sha256 for entry in data],
        "package_version": code.package_version,
        "code_sha256": code.code_sha256,
        "strategy_sha256": code.strategy_sha256,
    }
    if instruments:
        identity["instruments"] = [entry.sha256 for entry in instruments]
    return hashlib.sha256(msgspec.json.encode(identity, order="sorted")).hexdigest()[:16]


def code_version(strategy: type[Any]) -> CodeVersion:
    git_sha, git_dirty = _git_state(_PACKAGE_DIR)
    return CodeVersion(
        package_version=backtester.__version__,
        code_sha256=package_sha256(),
        strategy_sha256=_outside_source_sha256(strategy),
        git_sha=git_sha,
        git_dirty=git_dirty,
    )


def package_sha256() -> str:
    """sha256 over every module of the package, framed by its relative path."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE_DIR.rglob("*.py")):
        content = path.read_bytes()
        name = path.relative_to(_PACKAGE_DIR).as_posix().encode()
        digest.update(name + b"\x00" + len(content).to_bytes(8, "little") + content)
    return digest.hexdigest()


def _outside_source_sha256(strategy: type[Any]) -> str | None:
    try:
        source = inspect.getsourcefile(strategy)
    except (OSError, TypeError):  # defined where no file holds it: a notebook, a REPL, `python -c`
        return None
    if source is None:
        return None
    path = Path(source).resolve()
    if path.is_relative_to(_PACKAGE_DIR):
        return None
    return sha256_file(path)


def _git_state(directory: Path) -> tuple[str | None, bool | None]:
    # A package installed into a venv that sits inside some checkout is not that checkout's code:
    # only a package git tracks gets its SHA.
    sha = _git(directory, "rev-parse", "HEAD")
    if sha is None or not _git(directory, "ls-files", "--", "__init__.py"):
        return None, None
    status = _git(directory, "status", "--porcelain")
    return sha, None if status is None else status != ""


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=directory, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "dependencies": dependency_versions(),
    }


def runtime_dependencies() -> list[str]:
    """The package's declared runtime dependencies: from its installed metadata, else from the
    pyproject.toml of the checkout it runs from."""
    try:
        requirements = metadata.requires("backtester") or []
    except metadata.PackageNotFoundError:
        pyproject = _PACKAGE_DIR.parent / "pyproject.toml"
        if not pyproject.is_file():
            return list(CORE_DEPENDENCIES)
        requirements = tomllib.loads(pyproject.read_text())["project"].get("dependencies", [])
    names = set()
    for requirement in requirements:
        found = _REQUIREMENT_NAME.match(requirement)
        if found and "extra ==" not in requirement:
            names.add(found[0].lower())
    return sorted(names)


def dependency_versions() -> dict[str, str]:
    versions = {}
    for name in runtime_dependencies():
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_ENCODER = msgspec.json.Encoder()


def encode_manifest(manifest: Manifest) -> bytes:
    return msgspec.json.format(_ENCODER.encode(manifest), indent=2) + b"\n"


def read_manifest(path: Path) -> Manifest:
    return msgspec.json.decode(path.read_bytes(), type=Manifest)
