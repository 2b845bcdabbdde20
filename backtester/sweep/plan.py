"""From a sweep config to its points: each a full run spec with a derived seed and a run id.

Points come in a fixed order (the grid's cartesian product in the order written, then the random
draws of each grid combination), so a point's index, its seed and the sweep digest never depend on
how many workers ran it or in which order results arrived. A `[search]` plan starts without points:
the optimizer proposes them batch by batch (`sweep/search.py`), each added with `SweepPlan.add`.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from backtester.config import ConfigError, FileSource
from backtester.core.rng import module_rng
from backtester.data.errors import DataError
from backtester.manifest import CodeVersion, DataInput
from backtester.sweep.config import (
    Distribution,
    GridAxis,
    RangeSpec,
    SweepConfig,
    SweepConfigError,
    canonical_json,
    config_sha256,
    target_key,
)
from backtester.sweep.constraints import Constraint
from backtester.sweep.execute import (
    RunSpec,
    code_identity,
    data_input,
    decode_spec,
    run_id,
    set_key_path,
    source_files,
)

# Rejection sampling gives up after this many draws per wanted point: the constraints then leave
# almost nothing of the space, which is a config mistake worth reporting.
MAX_DRAWS_PER_POINT = 1000


class DataFile(msgspec.Struct, frozen=True):
    """An input file of the sweep, as published to workers: content hash, size, file name."""

    symbol: str
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class PlannedRun:
    index: int
    params: dict[str, Any]
    seed: int
    spec: RunSpec
    run_id: str


# A point filter besides the config's constraints (a notebook's `constraint=` callable).
Keep = Callable[[dict[str, Any]], bool]


@dataclass
class SweepPlan:
    """The sweep's identity and its points so far (all of them unless a search adds more)."""

    config: SweepConfig
    sweep_id: str
    config_sha256: str
    code: CodeVersion
    data: list[DataFile]
    runs: list[PlannedRun]
    inputs: dict[FileSource, DataInput] = field(default_factory=dict)
    keep: Keep | None = None

    @property
    def output_dir(self) -> Path:
        return Path(self.config.output_dir) / "sweeps" / self.sweep_id

    def add(self, params: dict[str, Any]) -> PlannedRun:
        """The next point: seeded and identified like a grid point of the same values."""
        seed = point_seed(self.config.seed, params)
        try:
            spec = point_spec(self.config.base, params, seed)
        except ValueError as exc:
            raise SweepConfigError(f"point {params}: {exc}") from None
        planned = PlannedRun(
            index=len(self.runs),
            params=params,
            seed=seed,
            spec=spec,
            run_id=run_id(spec, self.inputs, self.code),
        )
        self.runs.append(planned)
        return planned

    @functools.cached_property
    def constraints(self) -> list[Constraint]:
        return constraints_of(self.config)

    def feasible(self, params: dict[str, Any]) -> bool:
        """Whether a proposed point passes the config's constraints and the notebook's filter."""
        if not all(check(params) for check in self.constraints):
            return False
        return self.keep is None or bool(self.keep(params))


def point_seed(sweep_seed: int, params: dict[str, Any]) -> int:
    """sha256 of the sweep seed and the point's canonical JSON, as a non-negative 63-bit int."""
    text = str(sweep_seed).encode() + b"\x00" + msgspec.json.encode(params, order="sorted")
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1


def axis_values(axis: GridAxis) -> list[Any]:
    if not isinstance(axis, RangeSpec):
        return list(axis)
    start, stop, step = (Decimal(repr(v)) for v in (axis.start, axis.stop, axis.step))
    count = int((stop - start) / step) + 1
    # Decimal steps keep 0.1 + 0.2 from becoming 0.30000000000000004 at the far end of a range.
    values = [start + i * step for i in range(count)]
    if all(isinstance(v, int) for v in (axis.start, axis.stop, axis.step)):
        return [int(v) for v in values]
    return [float(v) for v in values]


def draw(dist: Distribution, rng: np.random.Generator) -> Any:
    if dist.uniform is not None:
        if dist.step is not None:
            first, last, step = (Decimal(repr(v)) for v in (*dist.uniform, dist.step))
            return float(first + step * int(rng.integers(int((last - first) / step) + 1)))
        return float(rng.uniform(*dist.uniform))
    if dist.loguniform is not None:
        low, high = (math.log(v) for v in dist.loguniform)
        return float(math.exp(rng.uniform(low, high)))
    if dist.randint is not None:
        start, stop = dist.randint
        every = int(dist.step or 1)
        return start + every * int(rng.integers((stop - start) // every + 1))
    assert dist.choice is not None  # Distribution requires exactly one
    return dist.choice[int(rng.integers(len(dist.choice)))]


def constraints_of(cfg: SweepConfig) -> list[Constraint]:
    """The config's constraints, each naming only parameters of the sweep."""
    constraints = [Constraint(text) for text in cfg.constraints]
    known = set(cfg.parameters())
    for constraint in constraints:
        unknown = [n for n in constraint.names if n not in known]
        if unknown:
            raise SweepConfigError(
                f"constraint {constraint.text!r}: unknown parameter {unknown[0]!r} "
                f"(parameters: {', '.join(cfg.parameters())})"
            )
    return constraints


def expand(cfg: SweepConfig, keep: Keep | None = None) -> list[dict[str, Any]]:
    """Every point's parameter values, in point order, constraints applied, duplicates dropped.
    `keep` filters points besides the constraints (a random draw it rejects is drawn again)."""
    if cfg.search is not None:
        return []
    constraints = constraints_of(cfg)
    grid_names = list(cfg.grid)
    on_grid = [c for c in constraints if set(c.names) <= set(grid_names)]
    others = [c for c in constraints if c not in on_grid]
    combos = [
        dict(zip(grid_names, values, strict=True))
        for values in itertools.product(*(axis_values(cfg.grid[n]) for n in grid_names))
    ]
    combos = [c for c in combos if all(check(c) for check in on_grid)]
    points: list[dict[str, Any]] = []
    seen: set[bytes] = set()

    def add(point: dict[str, Any]) -> bool:
        key = msgspec.json.encode(point, order="sorted")
        if key in seen or (keep is not None and not keep(point)):
            return False
        seen.add(key)
        points.append(point)
        return True

    if cfg.random is None:
        for combo in combos:
            add(combo)
        return points
    rng = module_rng(cfg.seed, "sweep.random")
    for combo in combos:
        wanted, draws = cfg.random.n, 0
        while wanted:
            draws += 1
            if draws > MAX_DRAWS_PER_POINT * cfg.random.n:
                raise SweepConfigError(
                    f"random sampling: the constraints (or duplicates) rejected {draws - 1} draws "
                    f"in a row for grid point {combo}; widen the distributions or relax constraints"
                )
            point = {**combo, **{n: draw(d, rng) for n, d in cfg.random.params.items()}}
            if all(check(point) for check in others) and add(point):
                wanted -= 1
    return points


def point_spec(base: dict[str, Any], params: dict[str, Any], seed: int) -> RunSpec:
    raw = copy.deepcopy(base)
    for name, value in params.items():
        try:
            set_key_path(raw, target_key(name), value)
        except ConfigError as exc:
            raise SweepConfigError(
                f"parameter {name!r}: {exc.message} in the base config"
            ) from None
    raw["seed"] = seed
    return decode_spec(raw)


def build_plan(cfg: SweepConfig, *, keep: Keep | None = None, identity: str = "") -> SweepPlan:
    """Decode every point's run spec and load its data once (so a bad key or a bad file fails
    before anything starts); check the strategy and its parameters on the first point. A search
    is checked on a point of its space (each parameter's low end) and starts without points.
    `identity` names what `keep` keeps, for the sweep id."""
    values = expand(cfg, keep)
    if cfg.search is not None:
        constraints_of(cfg)  # unknown names fail now, not at the first proposal
        values = [{name: _low_end(d) for name, d in cfg.search.params.items()}]
    elif not values:
        raise SweepConfigError("the constraints leave no point of the grid")
    specs = []
    for params in values:
        seed = point_seed(cfg.seed, params)
        try:
            specs.append((params, seed, point_spec(cfg.base, params, seed)))
        except ValueError as exc:
            raise SweepConfigError(f"point {params}: {exc}") from None
    # Every point sets the same keys, so checking the first point catches a bad strategy or
    # parameter name; a value the strategy rejects at another point is that point's failed run.
    first_params, _, first = specs[0]
    try:
        code = code_identity(first)
    except ValueError as exc:
        raise SweepConfigError(f"point {first_params}: {exc}") from None
    inputs = _load_inputs([spec for _, _, spec in specs])
    runs = [
        PlannedRun(index=i, params=params, seed=seed, spec=spec, run_id=run_id(spec, inputs, code))
        for i, (params, seed, spec) in enumerate(specs)
    ]
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        raise SweepConfigError("two points describe the same run; check the parameter space")
    data = _data_files(inputs)
    content: dict[str, Any] = {
        "config": msgspec.json.decode(canonical_json(cfg)),
        "data": sorted(d.sha256 for d in data),
    }
    if identity:
        content["keep"] = identity
    sweep_id = hashlib.sha256(msgspec.json.encode(content, order="sorted")).hexdigest()[:16]
    if cfg.search is not None:
        runs = []
    return SweepPlan(cfg, sweep_id, config_sha256(cfg), code, data, runs, inputs, keep)


def _low_end(dist: Distribution) -> Any:
    bounds = dist.uniform or dist.loguniform or dist.randint
    if bounds is not None:
        return bounds[0]
    assert dist.choice is not None  # Distribution requires exactly one
    return dist.choice[0]


def _load_inputs(specs: list[RunSpec]) -> dict[FileSource, DataInput]:
    """Each distinct data source of the sweep, loaded once for its manifest entry."""
    found: dict[FileSource, DataInput] = {}
    for spec in specs:
        for index, source in enumerate(source_files(spec)):
            if source in found:
                continue
            try:
                found[source] = data_input(source, index)
            except DataError as exc:
                raise SweepConfigError(f"data[{index}]: {exc}") from None
    return found


def _data_files(inputs: dict[FileSource, DataInput]) -> list[DataFile]:
    """The input files to publish, one per path."""
    files: dict[str, DataFile] = {}
    for source, entry in inputs.items():
        if source.path not in files:
            files[source.path] = DataFile(
                symbol=source.symbol,
                path=source.path,
                sha256=entry.sha256,
                size=Path(source.path).stat().st_size,
            )
    return list(files.values())
