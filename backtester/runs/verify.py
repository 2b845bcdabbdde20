"""`verify`: replay a run directory from its manifest and config, and say what, if anything, changed.

A run verifies when its files are intact, its config and data are the ones recorded, and the replay
reproduces the recorded digest. Changed code or dependencies alone do not fail it when the digest
still reproduces; they are reported, and named as the likely cause when it does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from backtester.config import (
    CatalogSource,
    ConfigError,
    FileSource,
    RunConfig,
    config_id,
    series_key,
)
from backtester.config_file import load_config
from backtester.core.digest import ALGORITHMS, DIGEST_ALGORITHM
from backtester.data.atomic import sha256_file
from backtester.data.bars import DataError
from backtester.engine import assembly
from backtester.manifest import (
    CodeVersion,
    DataInput,
    Manifest,
    dependency_versions,
    instrument_sha256,
    read_manifest,
)
from backtester.results import RunResult, result_digest
from backtester.runs.artifacts import CONFIG, MANIFEST
from backtester.runs.inputs import file_sha256, load_source
from backtester.runs.runner import replay


class VerifyError(ValueError):
    """The directory is not a run directory (no readable manifest)."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fails_run: bool = True  # False: reported, and named as a cause, but a reproduced digest passes
    subject: str = ""  # what changed, for the one-line summary (e.g. the data file)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.subject})" if self.subject else self.name


@dataclass
class Verdict:
    run_id: str
    checks: list[Check] = field(default_factory=list)

    @property
    def digest_ok(self) -> bool:
        return any(c.name == "digest" and c.ok for c in self.checks)

    @property
    def passed(self) -> bool:
        return self.digest_ok and all(c.ok or not c.fails_run for c in self.checks)

    @property
    def causes(self) -> list[Check]:
        """What changed (a replay that could not run is not a change)."""
        skipped = ("digest", *REPLAY_CHECKS)
        return [c for c in self.checks if not c.ok and c.name not in skipped]

    @property
    def replay_failure(self) -> Check | None:
        """Why the run could not be replayed at all, if it could not."""
        return next((c for c in self.checks if c.name in REPLAY_CHECKS and not c.ok), None)


REPLAY_CHECKS = ("strategy", "replay")


def verify_run(directory: str | Path) -> Verdict:
    root = Path(directory)
    manifest = _manifest(root)
    verdict = Verdict(manifest.run_id)
    verdict.checks.extend(_outputs(root, manifest))
    cfg = _config(root, manifest, verdict)
    if cfg is None:
        return verdict
    verdict.checks.extend(_data(cfg, manifest))
    verdict.checks.extend(_instruments(cfg, manifest))
    try:
        run = replay(cfg, str(root / CONFIG))
    except (ConfigError, DataError) as exc:
        verdict.checks.append(_unreplayable(cfg, exc))
        verdict.checks.append(Check("digest", False, "not replayed"))
        return verdict
    verdict.checks.append(_code(manifest.code, run.code))
    verdict.checks.append(_dependencies(manifest.dependencies))
    verdict.checks.append(_digest(manifest, run.result))
    return verdict


def _digest(manifest: Manifest, result: RunResult) -> Check:
    """The replay digested with the algorithm the run was recorded with (an older run directory's
    BLAKE2b-256 too), so that a new default hash does not read as a changed result."""
    algorithm = manifest.digest_algorithm
    if algorithm == DIGEST_ALGORITHM:
        replayed = result.digest
    elif algorithm in ALGORITHMS:
        replayed = result_digest(result.fills, result.equity, algorithm)
    else:
        return Check(
            "digest",
            False,
            f"recorded with digest algorithm {algorithm!r}, which this version does not compute "
            f"(it knows {', '.join(ALGORITHMS)}); run the config again to record a digest",
        )
    same = manifest.digest == replayed
    detail = replayed if same else f"recorded {manifest.digest}, replayed {replayed}"
    if algorithm != DIGEST_ALGORITHM:
        detail += f" ({algorithm}, as recorded; new runs record {DIGEST_ALGORITHM})"
    return Check("digest", same, detail)


def _unreplayable(cfg: RunConfig, exc: ConfigError | DataError) -> Check:
    """A replay that fails before it runs is not a changed result: say what stopped it. A strategy
    module found on the path the run was made with (a module in that directory, say) is not
    necessarily on this one."""
    if isinstance(exc, ConfigError) and exc.key == "strategy.name":
        name = cfg.strategy.name
        return Check(
            "strategy",
            False,
            f"{name} cannot be loaded from {Path.cwd()}: {exc.message} (verify from the "
            "directory the run was made in, or put its module on PYTHONPATH)",
            subject=name,
        )
    return Check("replay", False, f"cannot replay: {exc}")


def _manifest(root: Path) -> Manifest:
    path = root / MANIFEST
    if not path.is_file():
        raise VerifyError(f"{root}: not a run directory (no {MANIFEST})")
    try:
        return read_manifest(path)
    except ValueError as exc:
        raise VerifyError(f"{path}: unreadable manifest: {exc}") from None


def _outputs(root: Path, manifest: Manifest) -> list[Check]:
    problems = []
    for name, recorded in manifest.outputs.items():
        path = root / name
        if not path.is_file():
            problems.append(f"{name} missing")
        elif sha256_file(path) != recorded:
            problems.append(f"{name} modified")
    return [
        Check("outputs", not problems, "; ".join(problems) or f"{len(manifest.outputs)} intact")
    ]


def _config(root: Path, manifest: Manifest, verdict: Verdict) -> RunConfig | None:
    try:
        cfg = load_config(root / CONFIG)
    except ConfigError as exc:
        verdict.checks.append(Check("config", False, f"cannot be read: {exc}"))
        return None
    current = config_id(cfg)
    same = current == manifest.config_id
    detail = current if same else f"config_id recorded {manifest.config_id}, now {current}"
    verdict.checks.append(Check("config", same, detail))
    return cfg


def _data(cfg: RunConfig, manifest: Manifest) -> list[Check]:
    recorded = {_recorded_key(entry): entry for entry in manifest.data}
    checks = []
    for index, source in enumerate(cfg.data):
        symbol, series = key = series_key(source)
        entry = recorded.get(key)
        name = f"data {symbol}" + ("" if series == "ohlcv" else f" {series}")
        if entry is None:
            checks.append(Check(name, False, "not an input of the recorded run"))
            continue
        current, problem = _fingerprint(source, index)
        if current is None:
            checks.append(Check(name, False, f"{entry.path}: {problem}", subject=entry.path))
        elif current != entry.sha256:
            checks.append(
                Check(
                    name,
                    False,
                    f"{entry.path}: sha256 recorded {entry.sha256}, now {current}",
                    subject=entry.path,
                )
            )
        else:
            checks.append(Check(name, True, f"{entry.path}: {entry.sha256}"))
    return checks


def _recorded_key(entry: DataInput) -> tuple[str, str]:
    if entry.series == "higher":
        return entry.symbol, f"higher {entry.timeframe}"
    return entry.symbol, entry.series


def _instruments(cfg: RunConfig, manifest: Manifest) -> list[Check]:
    """Each instrument the run read from a markets snapshot, as the snapshot builds it now."""
    if not manifest.instruments:
        return []
    try:
        current = assembly.catalog_instruments(cfg)
    except ConfigError as exc:
        return [Check("instruments", False, f"cannot be read: {exc.message}")]
    checks = []
    for entry in manifest.instruments:
        name = f"instrument {entry.symbol}"
        found = current.get(entry.symbol)
        if found is None:
            checks.append(Check(name, False, "not read from a markets snapshot by this config"))
            continue
        now = instrument_sha256(found.instrument)
        where = f"{entry.snapshot} (fetched {entry.fetched_at})"
        if now != entry.sha256:
            detail = (
                f"{found.snapshot.directory} (fetched {found.snapshot.manifest.fetched_at}) "
                f"lists it otherwise than {where}: sha256 recorded {entry.sha256}, now {now}"
            )
            checks.append(Check(name, False, detail, subject=str(found.snapshot.directory)))
        else:
            checks.append(Check(name, True, f"{where}: {now}"))
    return checks


def _fingerprint(source: FileSource | CatalogSource, index: int) -> tuple[str | None, str]:
    """The input's current hash, or None and why not. A file is hashed without parsing it, so a file
    that no longer validates still shows as changed; catalog partitions are hashed again."""
    if isinstance(source, FileSource):
        sha256 = file_sha256(source)
        return sha256, "" if sha256 is not None else "missing"
    try:
        _, entry = load_source(source, index, rehash=True)
    except (ConfigError, DataError) as exc:
        return None, str(exc)
    return entry.sha256, ""


def _code(recorded: CodeVersion, current: CodeVersion) -> Check:
    changes = [
        f"{label} {old} -> {new}"
        for label, old, new in (
            ("package", recorded.package_version, current.package_version),
            ("code_sha256", recorded.code_sha256, current.code_sha256),
            ("strategy_sha256", recorded.strategy_sha256, current.strategy_sha256),
            ("git", recorded.git_sha, current.git_sha),
        )
        if old != new
    ]
    detail = "; ".join(changes) or f"{current.package_version}, code {current.code_sha256[:16]}"
    # Only the package and strategy sources decide results; a new commit alone is a note.
    decisive = (
        recorded.package_version == current.package_version
        and recorded.code_sha256 == current.code_sha256
        and recorded.strategy_sha256 == current.strategy_sha256
    )
    return Check("code", decisive, detail, fails_run=False)


def _dependencies(recorded: dict[str, str]) -> Check:
    current = dependency_versions()
    changes = [
        f"{name} {recorded.get(name)} -> {current.get(name)}"
        for name in sorted(set(recorded) | set(current))
        if recorded.get(name) != current.get(name)
    ]
    return Check("dependencies", not changes, "; ".join(changes) or "unchanged", fails_run=False)
