"""The one seam between sweeps and the engine: a run config in, `RunOutcome(digest, stats)` out.

Everything the sweep package needs to know about run configs goes through this module: decoding a
config from plain tables, the input files it names, the run id, the code identity and `execute`.
Until the run config of the `runs` work is merged, `RunSpec` is the interim mirror in
`backtester.sweep.runspec`; after the merge this module swaps to `backtester.config.RunConfig`,
`backtester.app.run_config`, `backtester.manifest.derive_run_id` and `code_version`, and nothing
else in the sweep package changes.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

import backtester
from backtester.app import EngineSetup, run_engine
from backtester.data.bars import BarData
from backtester.domain.instrument import Instrument, default_instrument
from backtester.domain.models import FeeModel, SlippageModel
from backtester.execution.fees import FixedRateFee, MakerTakerFee
from backtester.execution.slippage import FixedBpsSlippage, NoSlippage, VolumeShareSlippage
from backtester.strategies import BUILTIN
from backtester.strategy.base import Strategy
from backtester.sweep.runspec import (
    FixedBpsSlippageSpec,
    FixedFeeSpec,
    MakerTakerFeeSpec,
    NoSlippageSpec,
    RunConfig,
    VolumeShareSlippageSpec,
    config_id,
)

RunSpec = RunConfig
_PACKAGE_DIR = Path(backtester.__file__).resolve().parent


class SpecError(ValueError):
    """A run config that cannot run, named by its key path."""


class SourceFile(msgspec.Struct, frozen=True):
    symbol: str
    path: str
    repair: bool


class CodeIdentity(msgspec.Struct, frozen=True):
    """The code that computes a result; part of every run id. Git facts are informational only."""

    package_version: str
    code_sha256: str
    strategy_sha256: str | None


class RunOutcome(msgspec.Struct, frozen=True):
    digest: str
    stats: dict[str, Any]


def decode_spec(raw: dict[str, Any]) -> RunSpec:
    try:
        return msgspec.convert(raw, type=RunSpec)
    except msgspec.ValidationError as exc:
        raise SpecError(f"run config: {exc}") from None


def spec_to_builtins(spec: RunSpec) -> dict[str, Any]:
    plain: dict[str, Any] = msgspec.to_builtins(spec)
    return plain


def source_files(spec: RunSpec) -> list[SourceFile]:
    return [SourceFile(s.symbol, s.path, s.repair) for s in spec.data]


def strategy_class(name: str) -> type[Strategy[Any]]:
    """A built-in strategy by name, or a `Strategy` subclass by import path `package.module:Class`."""
    if ":" not in name:
        if name in BUILTIN:
            return BUILTIN[name]
        raise SpecError(
            f"strategy.name: unknown strategy {name!r} (built-in: {', '.join(BUILTIN)})"
        )
    module_name, _, attribute = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(f"strategy.name: cannot import {module_name!r}: {exc}") from None
    found = getattr(module, attribute, None)
    if not (isinstance(found, type) and issubclass(found, Strategy)):
        raise SpecError(f"strategy.name: {name!r} is not a Strategy subclass")
    return found


def check_param_names(spec: RunSpec) -> None:
    """Fail on a parameter the strategy does not declare; values are checked by each run."""
    strategy = strategy_class(spec.strategy.name)
    declared = [f.name for f in msgspec.structs.fields(strategy.Params)]
    for name in spec.strategy.params:
        if name not in declared:
            raise SpecError(
                f"strategy.params.{name}: {strategy.__name__} does not declare this parameter "
                f"(declared: {', '.join(declared) or 'none'})"
            )


def code_identity(strategy_name: str) -> CodeIdentity:
    return CodeIdentity(
        package_version=backtester.__version__,
        code_sha256=package_sha256(),
        strategy_sha256=_outside_source_sha256(strategy_class(strategy_name)),
    )


def run_id(spec: RunSpec, data_sha256: list[str], code: CodeIdentity) -> str:
    """Content-derived, computed exactly as `python -m backtester run` derives it."""
    identity = {
        "config_id": config_id(spec),
        "data": data_sha256,
        "package_version": code.package_version,
        "code_sha256": code.code_sha256,
        "strategy_sha256": code.strategy_sha256,
    }
    return hashlib.sha256(msgspec.json.encode(identity, order="sorted")).hexdigest()[:16]


def execute(spec: RunSpec, data: Mapping[str, BarData]) -> RunOutcome:
    """Run one config over its loaded data (`data` keyed by symbol, in the config's order)."""
    strategy = strategy_class(spec.strategy.name)
    params = strategy.make_params(spec.strategy.params)
    frames = {s.symbol: data[s.symbol].frame for s in spec.data}
    repairs = [data[s.symbol].repair for s in spec.data]
    result = run_engine(
        frames,
        _instruments(spec),
        strategy,
        params,
        _fee_model(spec),
        _slippage_model(spec),
        EngineSetup(initial_cash=spec.cash, fill=spec.fill, risk=spec.risk, seed=spec.seed),
        [r for r in repairs if r is not None],
    )
    return RunOutcome(digest=result.digest, stats=dict(result.stats))


def _instruments(spec: RunSpec) -> dict[str, Instrument]:
    given = {i.symbol: i for i in spec.instruments}
    return {s.symbol: given.get(s.symbol) or default_instrument(s.symbol) for s in spec.data}


def _fee_model(spec: RunSpec) -> FeeModel:
    match spec.fees:
        case FixedFeeSpec(rate=rate):
            return FixedRateFee(rate=rate)
        case MakerTakerFeeSpec(maker=maker, taker=taker):
            return MakerTakerFee(maker=maker, taker=taker)


def _slippage_model(spec: RunSpec) -> SlippageModel:
    match spec.slippage:
        case NoSlippageSpec():
            return NoSlippage()
        case FixedBpsSlippageSpec(bps=bps):
            return FixedBpsSlippage(bps=bps)
        case VolumeShareSlippageSpec(volume_limit=limit, price_impact=impact):
            return VolumeShareSlippage(volume_limit=limit, price_impact=impact)


def package_sha256() -> str:
    """sha256 over every module of the package, framed by its relative path."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE_DIR.rglob("*.py")):
        content = path.read_bytes()
        name = path.relative_to(_PACKAGE_DIR).as_posix().encode()
        digest.update(name + b"\x00" + len(content).to_bytes(8, "little") + content)
    return digest.hexdigest()


def _outside_source_sha256(strategy: type[Any]) -> str | None:
    source = inspect.getsourcefile(strategy)
    if source is None:
        return None
    path = Path(source).resolve()
    if path.is_relative_to(_PACKAGE_DIR):
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout the package runs from; (None, None) outside one."""
    sha = _git("rev-parse", "HEAD")
    if sha is None:
        return None, None
    status = _git("status", "--porcelain")
    return sha, None if status is None else status != ""


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=_PACKAGE_DIR,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
