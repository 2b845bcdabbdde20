"""Which strategy modules a worker imports."""

import pytest

from backtester.sweep.config import decode_sweep_config
from backtester.sweep.trust import check_prefixes, refusal, sweep_strategy_modules


def test_built_ins_and_allowed_module_paths_run_everything_else_is_refused() -> None:
    assert refusal("SmaCross", ()) is None
    assert refusal("backtester.strategies:SmaCross", ()) is None
    assert refusal("backtester.strategy.library.sma_cross:SmaCross", ()) is None
    assert refusal("mystrats.trend:Trend", ["mystrats"]) is None
    assert refusal("mystrats:Trend", ["mystrats"]) is None
    refused = refusal("mystrats_old:Trend", ["mystrats"])
    assert refused is not None and "'mystrats_old' is not allowed" in refused
    assert refusal("os:system", ()) is not None
    assert refusal("backtester_evil:X", ()) is not None
    assert refusal(".relative:X", ["relative"]) is not None


def test_prefixes_must_be_module_paths() -> None:
    assert check_prefixes(["mystrats.", "a.b"]) == ["mystrats", "a.b"]
    with pytest.raises(ValueError, match="expected a module path"):
        check_prefixes(["../x"])


def test_a_sweeps_own_modules_are_its_base_strategy_and_those_it_sweeps_over() -> None:
    config = decode_sweep_config(
        {
            "base": {"strategy": {"name": "mystrats.trend:Trend"}},
            "grid": {"strategy.name": ["SmaCross", "other.mod:X", "mystrats.trend:Y"]},
        },
        "sweep.toml",
    )
    assert sweep_strategy_modules(config) == ["mystrats.trend", "other.mod"]
