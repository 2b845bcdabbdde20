"""Every golden case reproduces its expected digest and statistics exactly (floats bit for bit).

A failure here means results changed. If that is intended, rewrite the goldens with
`python scripts/regen_golden.py --reason "..."` and commit the diff it prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backtester.runs import golden

ROOT = Path(__file__).resolve().parents[2] / "golden"
CASES = golden.cases(ROOT)


@pytest.fixture(scope="module")
def computed() -> dict[str, dict[str, Any]]:
    return {case.name: golden.compute(case) for case in CASES}


def test_golden_cases_cover_both_strategies_on_two_datasets_a_repair_and_perpetuals() -> None:
    names = {case.name for case in CASES}
    assert {
        "sma_cross_binance",
        "sma_extended_binance",
        "sma_cross_binance_raw_repaired",
        "sma_extended_binance_raw_repaired",
        "sma_cross_binanceus",
        "sma_extended_binanceus",
        "perp_short_funding",
        "perp_liquidation",
    } <= names


def test_golden_data_lives_in_golden() -> None:
    for case in CASES:
        text = (case / golden.CONFIG).read_text()
        assert "tests/" not in text, case.name


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_case_reproduces_expected_results_exactly(
    case: Path, computed: dict[str, dict[str, Any]]
) -> None:
    expected = golden.read_expected(case)
    assert expected is not None, f"{case.name}: no expected.json; run scripts/regen_golden.py"
    assert golden.differences(expected, computed[case.name]) == []
    assert expected["digest"] == computed[case.name]["digest"]
    assert expected["stats"] == computed[case.name]["stats"]


@pytest.mark.parametrize("strategy", ["sma_cross", "sma_extended"])
def test_repaired_raw_export_reproduces_the_clean_series(
    strategy: str, computed: dict[str, dict[str, Any]]
) -> None:
    clean = computed[f"{strategy}_binance"]
    repaired = computed[f"{strategy}_binance_raw_repaired"]
    assert repaired == clean


def test_differences_show_one_ulp_changes() -> None:
    expected = {"digest": "a", "stats": {"sharpe": 0.1, "trades": 3}}
    computed = {"digest": "a", "stats": {"sharpe": 0.10000000000000002, "trades": 3}}
    assert golden.differences(expected, computed) == ["stats.sharpe: 0.1 -> 0.10000000000000002"]
