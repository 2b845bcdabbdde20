"""Sweep configs: a base run config plus a parameter space, an objective and constraints.

```toml
name = "sma"
seed = 7                       # seeds the random sampling and, with each point, every run

[base]                         # a run config, exactly as `python -m backtester run` reads it
...                            # (or: base = "configs/sma_cross.toml")

[grid]                         # the cartesian product, in the order written
fast = { start = 5, stop = 50, step = 5 }     # inclusive range
slow = [20, 40, 60, 80, 120]

[random]                       # n draws for each grid combination
n = 10
params = { "fees.rate" = { uniform = [0.0005, 0.002] } }

constraints = ["fast < slow"]
objective = { stat = "sharpe", direction = "maximize" }
```

Instead of `[grid]`/`[random]`, a `[search]` asks an optimizer (optuna) for the points, at most
`batch` trials in flight (trial n asked once trials 0..n-batch are told), so the trials depend on
the seed and the batch size only:

```toml
[search]
method = "tpe"                 # tpe, cmaes, or nsga2 (several objectives)
trials = 64
batch = 8
params = { fast = { randint = [5, 50] }, slow = { randint = [20, 200], step = 10 } }
```

A `[walk_forward]` section (`train = "60d"`, `test = "15d"`, `step = "15d"`, `anchored = false`)
makes it a walk-forward: the space is optimized on each training window and the best point run on
the test window after it (`sweep/walkforward.py`).

Several objectives (`objectives = [{ stat = "sharpe" }, { stat = "max_drawdown_pct",
direction = "minimize" }]`) replace `objective`; the first ranks the results table.

A parameter name without a dot is a strategy parameter (`strategy.params.<name>`); a dotted name is
any key path of the run config (`fees.rate`, `fill.intrabar`), and `run.<key>` names a top-level key
(`run.cash`). The seed is not a parameter: each point derives its own from the sweep seed.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from backtester.sweep.folds import duration_ns


class SweepConfigError(ValueError):
    pass


class RangeSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """From `start` to `stop` inclusive, every `step`."""

    start: int | float
    stop: int | float
    step: int | float

    def __post_init__(self) -> None:
        if not self.step > 0:
            raise ValueError(f"step must be > 0, got {self.step}")
        if self.stop < self.start:
            raise ValueError(f"stop {self.stop} is below start {self.start}")


GridAxis = Annotated[list[Any], msgspec.Meta(min_length=1)] | RangeSpec


class Distribution(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Exactly one of: `uniform = [low, high]`, `loguniform = [low, high]` (low > 0),
    `randint = [low, high]` (inclusive), `choice = [a, b, ...]`; `uniform` and `randint` take a
    `step` (values low, low + step, ... up to high)."""

    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    randint: tuple[int, int] | None = None
    choice: Annotated[list[Any], msgspec.Meta(min_length=1)] | None = None
    step: Annotated[float, msgspec.Meta(gt=0)] | None = None

    def __post_init__(self) -> None:
        given = [k for k in ("uniform", "loguniform", "randint", "choice") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of uniform, loguniform, randint, choice")
        bounds = self.uniform or self.loguniform or self.randint
        if bounds is not None and not bounds[0] <= bounds[1]:
            raise ValueError(f"{given[0]}: low {bounds[0]} is above high {bounds[1]}")
        if self.loguniform is not None and self.loguniform[0] <= 0:
            raise ValueError("loguniform: low must be > 0")
        if self.step is not None and self.uniform is None and self.randint is None:
            raise ValueError("step applies to uniform and randint only")
        if self.randint is not None and self.step is not None and self.step != int(self.step):
            raise ValueError(f"randint: step must be a whole number, got {self.step}")


class RandomSpace(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    n: Annotated[int, msgspec.Meta(ge=1)]
    params: Annotated[dict[str, Distribution], msgspec.Meta(min_length=1)]


class Objective(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    stat: str = "sharpe"
    direction: Literal["maximize", "minimize"] = "maximize"


SearchMethod = Literal["tpe", "cmaes", "nsga2"]


class Search(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An optimizer proposes the points: `trials` runs, at most `batch` asked and not told at once
    (the batch size is part of the config, never the number of workers, so any number of workers
    runs the same trials). `startup`: random trials before TPE or CMA-ES start modelling; `population`: NSGA-II's
    population (default 50) or CMA-ES's (default from the dimension)."""

    params: Annotated[dict[str, Distribution], msgspec.Meta(min_length=1)]
    trials: Annotated[int, msgspec.Meta(ge=1)]
    method: SearchMethod = "tpe"
    batch: Annotated[int, msgspec.Meta(ge=1)] = 8
    startup: Annotated[int, msgspec.Meta(ge=0)] = 10
    population: Annotated[int, msgspec.Meta(ge=2)] | None = None


class WalkForward(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Walk-forward validation (`sweep/walkforward.py`): optimize on `train`, run the best point on
    the `test` after it, move both on by `step` (default: `test`); `anchored` keeps every training
    window's start at the data's first bar. Durations: a count and s, m, h, d or w ("60d")."""

    train: str
    test: str
    step: str | None = None
    anchored: bool = False

    def __post_init__(self) -> None:
        lengths = {
            name: duration_ns(value)
            for name, value in (("train", self.train), ("test", self.test), ("step", self.step))
            if value is not None
        }
        if lengths.get("step", lengths["test"]) < lengths["test"]:
            raise ValueError(
                f"step {self.step} is shorter than test {self.test}: test windows would overlap"
            )

    def step_or_test(self) -> str:
        return self.step or self.test


class SweepConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    base: dict[str, Any]
    name: str = "sweep"
    seed: Annotated[int, msgspec.Meta(ge=0)] = 0
    grid: dict[str, GridAxis] = {}
    random: RandomSpace | None = None
    search: Search | None = None
    constraints: list[str] = []
    objective: Objective = Objective()
    objectives: list[Objective] = []
    top: Annotated[int, msgspec.Meta(ge=0)] = 10
    walk_forward: WalkForward | None = None
    output_dir: str = "runs"

    def __post_init__(self) -> None:
        if not self.grid and self.random is None and self.search is None:
            raise ValueError("a sweep needs a [grid], a [random] or a [search] parameter space")
        if self.search is not None and (self.grid or self.random is not None):
            raise ValueError("[search] proposes every point: leave out [grid] and [random]")
        names = self.parameters()
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"parameter {repeated[0]!r} is in both [grid] and [random]")
        for name in names:
            if target_key(name) in _RESERVED:
                raise ValueError(f"parameter {name!r}: {_RESERVED[target_key(name)]}")
            if not _NAME.match(name):
                raise ValueError(f"parameter {name!r}: expected a name or a dotted key path")
            if self.search is not None and target_key(name).startswith("data"):
                raise ValueError(f"parameter {name!r}: a search cannot vary the data sources")
        stats = [goal.stat for goal in self.objectives]
        if len(set(stats)) != len(stats):
            raise ValueError("objectives: a statistic is named twice")

    def parameters(self) -> list[str]:
        searched = self.search.params if self.search else {}
        return [*self.grid, *(self.random.params if self.random else {}), *searched]

    def goals(self) -> list[Objective]:
        """What is optimized: `objectives` when given, else the one `objective`."""
        return list(self.objectives) or [self.objective]

    def ranking(self) -> Objective:
        """The objective the results table is ranked by: the first goal."""
        return self.goals()[0]


_RESERVED = {
    "seed": "each point's seed derives from the sweep seed; set the sweep's `seed` instead",
    "output_dir": "where runs are written is not a parameter",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*$")


def load_sweep_config(path: str | Path, *, output_dir: str | None = None) -> SweepConfig:
    label = str(path)
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepConfigError(f"sweep config not found: {label}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SweepConfigError(f"{label}: cannot read the sweep config: {exc}") from None
    if isinstance(raw.get("base"), str):
        raw["base"] = _read_base(raw["base"], label)
    if output_dir is not None:
        raw["output_dir"] = output_dir
    return decode_sweep_config(raw, label)


def decode_sweep_config(raw: dict[str, Any], label: str) -> SweepConfig:
    try:
        return msgspec.convert(raw, type=SweepConfig)
    except msgspec.ValidationError as exc:
        raise SweepConfigError(f"{label}: {exc}") from None


def _read_base(path: str, label: str) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepConfigError(f"{label}: base: run config not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SweepConfigError(f"{label}: base: cannot read {path}: {exc}") from None


def canonical_json(cfg: SweepConfig) -> bytes:
    """Defaults filled in, keys sorted, output location left out: what decides the sweep's results."""
    plain = msgspec.to_builtins(cfg)
    plain.pop("output_dir")
    if plain.get("walk_forward") is None:
        plain.pop("walk_forward", None)  # sweeps keep the ids they had before walk-forward existed
    plain["base"].pop("output_dir", None)
    return msgspec.json.encode(plain, order="sorted")


def config_sha256(cfg: SweepConfig) -> str:
    return hashlib.sha256(canonical_json(cfg)).hexdigest()


def target_key(parameter: str) -> str:
    """The run config key a sweep parameter sets: `run.` marks a key path from the root (the only
    way to name a top-level key such as `run.cash`); any other dotted name is a key path too; a
    plain name is a strategy parameter."""
    if parameter.startswith("run."):
        return parameter.removeprefix("run.")
    return parameter if "." in parameter or "[" in parameter else f"strategy.params.{parameter}"
