"""`run`: a config file in, a run directory `<output_dir>/<run_id>/` with its manifest out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from backtester.config import ConfigError, RunConfig, config_id
from backtester.config_file import dump_config, load_config
from backtester.core.digest import DIGEST_ALGORITHM
from backtester.data.atomic import check_writable, sha256_file
from backtester.engine import SetupError, assembly, engine_for_config
from backtester.manifest import (
    CodeVersion,
    Manifest,
    code_version,
    derive_run_id,
    encode_manifest,
    environment,
    read_manifest,
    utc_now,
)
from backtester.results import RunResult
from backtester.runs.artifacts import MANIFEST, output_names, publish, write_outputs
from backtester.runs.inputs import LoadedData, load_data

log = structlog.get_logger("backtester.runs")


@dataclass(frozen=True)
class Replay:
    """A config run in memory, with everything the manifest needs to say what produced it."""

    config: RunConfig
    config_id: str
    code: CodeVersion
    data: LoadedData
    result: RunResult
    run_id: str


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    directory: Path
    result: RunResult
    kept_existing: bool


def replay(cfg: RunConfig, source: str, *, progress: bool = False) -> Replay:
    """Build and run a decoded config; config problems are attributed to `source` (the file)."""
    try:
        strategy = assembly.strategy_class(cfg.strategy.name)
        assembly.strategy_params(strategy, cfg.strategy)  # fail on bad params before loading data
        data = load_data(cfg)
        # Built before anything is logged: a run that cannot be built is one line of error.
        engine = engine_for_config(
            cfg,
            data.frames,
            data.repairs,
            marks=data.marks,
            funding=data.funding,
            instruments=data.instruments,
            timeframes=data.higher,
        )
    except ConfigError as exc:
        raise exc.in_file(source) from None
    except SetupError as exc:
        # A run the config describes but the engine cannot build: the config file is at fault.
        raise ConfigError("", str(exc), source=source) from None
    cid, code, run_id = identify(cfg, strategy, data)
    for spec, entry in zip(cfg.data, data.inputs, strict=True):
        # `rows` are the bars the run gets; a repair also says how many rows it read and changed.
        repair = entry.repair
        changes = (
            {}
            if repair is None
            else {
                "rows_read": repair.rows_in,
                "identical_dropped": repair.identical_duplicates_dropped,
                "conflicting_resolved": repair.conflicting_duplicates_resolved,
                "unsorted_sorted": repair.out_of_order_sorted,
            }
        )
        log.info(
            "data.loaded",
            symbol=entry.symbol,
            path=entry.path,
            rows=data.frame_of(spec).height,
            **changes,
            sha256=entry.sha256[:16],
            repaired=repair is not None,
        )
    log.info(
        "run.start", run_id=run_id, config_id=cid[:16], strategy=cfg.strategy.name, seed=cfg.seed
    )
    result = engine.run(progress=progress)
    log.info(
        "run.finished", run_id=run_id, digest=result.digest[:16], trades=result.stats["trades"]
    )
    return Replay(cfg, cid, code, data, result, run_id)


def identify(cfg: RunConfig, strategy: type[Any], data: LoadedData) -> tuple[str, CodeVersion, str]:
    """The config_id, the code version and the run_id that derives from them and the data."""
    cid = config_id(cfg)
    code = code_version(strategy)
    return cid, code, derive_run_id(cid, data.inputs, code, data.instrument_inputs)


def recorded(cfg: RunConfig, strategy: type[Any], data: LoadedData, result: RunResult) -> Replay:
    """A run made from `cfg` (here or in a notebook), with what its manifest records."""
    cid, code, run_id = identify(cfg, strategy, data)
    return Replay(cfg, cid, code, data, result, run_id)


def execute(
    config_path: str | Path,
    *,
    overrides: Sequence[str] = (),
    seed: int | None = None,
    output_dir: str | None = None,
    progress: bool = False,
) -> RunOutcome:
    source = str(config_path)
    cfg = load_config(source, overrides=overrides, seed=seed, output_dir=output_dir)
    check_writable(Path(cfg.output_dir), "run directory")  # before the run, not after it
    started_at = utc_now()
    return write_run(replay(cfg, source, progress=progress), started_at)


def write_run(run: Replay, started_at: str, finished_at: str | None = None) -> RunOutcome:
    """Publish `<output_dir>/<run_id>/` for a run made in memory; a directory already there with the
    same digest is kept. `finished_at` defaults to when the files are written."""
    parent = Path(run.config.output_dir)
    existing = parent / run.run_id / MANIFEST
    if existing.is_file() and _digest_of(existing) == run.result.digest:
        log.info("run.kept", run_id=run.run_id, reason="exists with the same digest")
        return RunOutcome(run.run_id, parent / run.run_id, run.result, kept_existing=True)
    if existing.is_file():
        log.warning("run.replacing", run_id=run.run_id, reason="exists with a different digest")

    def fill(directory: Path) -> None:
        write_outputs(directory, run.result, dump_config(run.config))
        outputs = {name: sha256_file(directory / name) for name in output_names()}
        manifest = build_manifest(run, started_at, finished_at or utc_now(), outputs)
        (directory / MANIFEST).write_bytes(encode_manifest(manifest))

    directory = publish(parent, run.run_id, fill)
    log.info("run.written", run_id=run.run_id, directory=str(directory))
    return RunOutcome(run.run_id, directory, run.result, kept_existing=False)


def _digest_of(manifest_path: Path) -> str | None:
    try:
        return read_manifest(manifest_path).digest
    except (OSError, ValueError):
        return None  # unreadable: treated as absent, so the run directory is rewritten


def build_manifest(
    run: Replay, started_at: str, finished_at: str, outputs: dict[str, str]
) -> Manifest:
    env = environment()
    return Manifest(
        run_id=run.run_id,
        config_id=run.config_id,
        seed=run.config.seed,
        strategy=run.config.strategy.name,
        git_sha=run.code.git_sha,
        git_dirty=run.code.git_dirty,
        package_version=run.code.package_version,
        code_sha256=run.code.code_sha256,
        strategy_sha256=run.code.strategy_sha256,
        python=env["python"],
        platform=env["platform"],
        dependencies=env["dependencies"],
        data=run.data.inputs,
        started_at=started_at,
        finished_at=finished_at,
        digest=run.result.digest,
        outputs=outputs,
        digest_algorithm=DIGEST_ALGORITHM,
        account=run.result.account,
        marked_by=run.result.marked_by,
        instruments=run.data.instrument_inputs,
    )
