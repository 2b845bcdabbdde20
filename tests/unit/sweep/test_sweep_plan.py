"""Sweep configs into points: grid order, ranges, random draws, constraints, seeds and ids."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from backtester.runs.runner import replay
from backtester.sweep.config import SweepConfigError, decode_sweep_config, load_sweep_config
from backtester.sweep.constraints import Constraint, ConstraintError
from backtester.sweep.execute import execute, read_sources
from backtester.sweep.plan import axis_values, build_plan, expand, point_seed
from tests.sweep_support import GOLDEN, REPO

BASE: dict[str, Any] = {
    "cash": 10_000.0,
    "data": [{"kind": "file", "path": str(GOLDEN), "symbol": "BTC/USDT"}],
    "strategy": {"name": "SmaCross"},
    "fees": {"kind": "fixed", "rate": 0.001},
}


def config(**raw: Any) -> Any:
    return decode_sweep_config({"base": BASE, **raw}, "test")


def test_the_grid_is_the_cartesian_product_in_the_order_written_minus_constraints() -> None:
    cfg = config(grid={"slow": [20, 30], "fast": [5, 20, 25]}, constraints=["fast < slow"])
    assert expand(cfg) == [
        {"slow": 20, "fast": 5},
        {"slow": 30, "fast": 5},
        {"slow": 30, "fast": 20},
        {"slow": 30, "fast": 25},
    ]


def test_ranges_are_inclusive_and_float_steps_land_on_exact_decimals() -> None:
    cfg = config(
        grid={
            "x": {"start": 0.1, "stop": 0.5, "step": 0.1},
            "n": {"start": 1, "stop": 7, "step": 3},
        }
    )
    assert axis_values(cfg.grid["x"]) == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert axis_values(cfg.grid["n"]) == [1, 4, 7]


def test_random_draws_are_seeded_per_grid_point_and_respect_constraints() -> None:
    raw = {
        "seed": 5,
        "grid": {"fast": [5, 10]},
        "random": {
            "n": 4,
            "params": {
                "slow": {"randint": [8, 40]},
                "fees.rate": {"loguniform": [0.0001, 0.01]},
                "fill.intrabar": {"choice": ["ohlc", "pessimistic"]},
            },
        },
        "constraints": ["fast * 2 <= slow"],
    }
    points = expand(config(**raw))
    assert points == expand(config(**raw))
    assert [p["fast"] for p in points] == [5] * 4 + [10] * 4
    assert all(p["fast"] * 2 <= p["slow"] <= 40 for p in points)
    assert all(0.0001 <= p["fees.rate"] <= 0.01 for p in points)
    assert expand(config(**{**raw, "seed": 6})) != points


def test_constraints_that_reject_every_draw_are_reported() -> None:
    cfg = config(
        grid={"fast": [50]},
        random={"n": 2, "params": {"slow": {"randint": [1, 10]}}},
        constraints=["fast < slow"],
    )
    with pytest.raises(SweepConfigError, match="rejected"):
        expand(cfg)


def test_point_seeds_are_stable_and_differ_by_point_and_sweep_seed() -> None:
    assert point_seed(7, {"fast": 5, "slow": 20}) == point_seed(7, {"slow": 20, "fast": 5})
    # The documented definition: sha256(sweep seed, NUL, canonical point JSON), 63 bits.
    digest = hashlib.sha256(b'7\x00{"fast":5,"slow":20}').digest()
    assert point_seed(7, {"fast": 5, "slow": 20}) == int.from_bytes(digest[:8], "little") >> 1
    assert point_seed(7, {"fast": 5, "slow": 20}) == 3_050_944_675_614_665_107
    assert point_seed(7, {"fast": 5, "slow": 30}) != point_seed(7, {"fast": 5, "slow": 20})
    assert point_seed(8, {"fast": 5, "slow": 20}) != point_seed(7, {"fast": 5, "slow": 20})


def test_each_point_is_a_full_run_spec_with_dotted_parameters_applied() -> None:
    grid = {"fast": [5], "slow": [30], "fees.rate": [0.002], "run.cash": [500.0]}
    plan = build_plan(config(grid=grid))
    (run,) = plan.runs
    assert run.spec.cash == 500.0
    assert run.spec.strategy.params == {"fast": 5, "slow": 30}
    assert run.spec.fees.rate == 0.002  # type: ignore[union-attr]
    assert run.spec.seed == run.seed == point_seed(0, run.params)
    assert len(run.run_id) == 16
    assert plan.data[0].size == GOLDEN.stat().st_size


def test_the_sweep_id_ignores_where_results_go_but_not_what_is_swept() -> None:
    grid = {"fast": [5, 10], "slow": [30]}
    one = build_plan(config(grid=grid))
    assert build_plan(config(grid=grid, output_dir="elsewhere")).sweep_id == one.sweep_id
    assert build_plan(config(grid=grid, seed=1)).sweep_id != one.sweep_id
    assert [r.run_id for r in build_plan(config(grid=grid)).runs] == [r.run_id for r in one.runs]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"grid": {"run.seed": [1, 2]}}, "derives from the sweep seed"),
        (
            {"grid": {"fast": [5]}, "random": {"n": 1, "params": {"fast": {"uniform": [1, 2]}}}},
            "both",
        ),
        ({"grid": {"fast": [5]}, "constraints": ["fast < slow"]}, "unknown parameter 'slow'"),
        ({"grid": {"fast": [5]}, "constraints": ["__import__('os').getpid()"]}, "not allowed"),
        ({"grid": {"fast": [5]}, "random": {"n": 1, "params": {"x": {}}}}, "exactly one"),
        ({"grid": {"fast": {"start": 5, "stop": 1, "step": 1}}}, "below start"),
        ({}, "needs a \\[grid\\], a \\[random\\] or a \\[search\\]"),
        ({"grid": {"fast": [5]}, "constraints": ["fast > 99"]}, "leave no point"),
        ({"grid": {"fats": [5]}}, "does not declare this parameter"),
        ({"grid": {"run.cash": [-1.0]}}, "point .*cash"),
    ],
)
def test_bad_sweep_configs_fail_before_anything_runs(raw: dict[str, Any], message: str) -> None:
    with pytest.raises((SweepConfigError, ConstraintError, ValueError), match=message):
        build_plan(config(**raw))


def test_constraints_evaluate_chained_comparisons_and_dotted_names() -> None:
    check = Constraint("1 <= fast < slow and not fees.rate > 0.01")
    assert check.names == ["fast", "slow", "fees.rate"]
    assert check({"fast": 2, "slow": 3, "fees.rate": 0.001})
    assert not check({"fast": 3, "slow": 3, "fees.rate": 0.001})
    assert not check({"fast": 2, "slow": 3, "fees.rate": 0.02})


def test_the_sample_sweep_config_has_a_grid_of_at_least_50_points() -> None:
    cfg = load_sweep_config(REPO / "configs" / "sweep_sma.toml")
    assert len(expand(cfg)) >= 50


def test_a_base_run_config_file_can_stand_in_for_the_base_table(tmp_path: Path) -> None:
    base = tmp_path / "run.toml"
    base.write_text(
        f'[[data]]\nkind = "file"\npath = "{GOLDEN}"\nsymbol = "BTC/USDT"\n'
        '[strategy]\nname = "SmaCross"\n'
    )
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(f'base = "{base}"\n[grid]\nfast = [5, 10]\n')
    cfg = load_sweep_config(sweep)
    assert cfg.base["strategy"] == {"name": "SmaCross"}
    assert len(build_plan(cfg).runs) == 2


def test_a_point_has_the_run_id_and_digest_of_a_single_run_of_its_config() -> None:
    plan = build_plan(config(grid={"fast": [5], "slow": [30]}))
    (run,) = plan.runs
    single = replay(run.spec, "point")
    assert run.run_id == single.run_id
    assert plan.code == single.code
    assert execute(run.spec, read_sources(run.spec)).digest == single.result.digest


def test_data_a_sweep_cannot_ship_or_find_fails_before_anything_runs(tmp_path: Path) -> None:
    catalog = {"kind": "catalog", "exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1m"}
    with pytest.raises(SweepConfigError, match=r"data\[0\]\.kind: a sweep reads data files only"):
        build_plan(
            decode_sweep_config({"base": {**BASE, "data": [catalog]}, "grid": {"fast": [5]}}, "t")
        )
    missing = [{"kind": "file", "path": str(tmp_path / "none.parquet"), "symbol": "BTC/USDT"}]
    with pytest.raises(SweepConfigError, match="data file not found"):
        build_plan(
            decode_sweep_config({"base": {**BASE, "data": missing}, "grid": {"fast": [5]}}, "t")
        )
