"""Reruns in separate processes with different PYTHONHASHSEED give bit-identical results.

String hashes, and so set and dict-of-set orders, differ between such processes; a result that
depended on them (or on the wall clock, or on an unseeded generator) would change its digest here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from backtester import Backtest
from backtester.strategies import SmaCross

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = "golden/data/binance_BTC-USDT_1m.parquet"

# The child's table of runs: name -> (strategy, Backtest keywords, strategy parameters).
RUNS = """
from backtester import Backtest, VolumeShareSlippage
from backtester.strategies import SmaCross, SmaExtended

GOLDEN = "golden/data/binance_BTC-USDT_1m.parquet"
RUNS = {
    "sma_cross": (SmaCross, {"cash": 100_000, "fee_rate": 0.001}, {"fast": 10, "slow": 30}),
    "sma_extended_sl_tp": (
        SmaExtended,
        {"cash": 100_000, "fee_rate": 0.001},
        {"fast": 10, "slow": 30, "stop_loss_pct": 0.5, "take_profit_pct": 1.0, "cooldown_bars": 5},
    ),
    "volume_share_seeded": (
        SmaCross,
        {
            "cash": 100_000,
            "fee_rate": 0.001,
            "slippage": VolumeShareSlippage(volume_limit=0.01, price_impact=0.1),
            "seed": 12_345,
        },
        {"fast": 10, "slow": 30},
    ),
}
"""

CHILD = (
    RUNS
    + """
import json
digests = {}
for name, (strategy, options, params) in RUNS.items():
    result = Backtest(GOLDEN, strategy, **options).run(**params)
    digests[name] = [result.digest, result.fills.height]
print(json.dumps(digests))
"""
)


def _start_child(hash_seed: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def digests_by_hash_seed() -> dict[str, dict[str, list[object]]]:
    """The child's digests under each hash seed; the two processes run side by side."""
    children = {seed: _start_child(seed) for seed in ("0", "12345")}
    digests = {}
    for seed, child in children.items():
        stdout, stderr = child.communicate(timeout=300)
        assert child.returncode == 0, stderr
        digests[seed] = json.loads(stdout)
    return digests


def test_runs_in_processes_with_different_hash_seeds_give_identical_digests(
    digests_by_hash_seed: dict[str, dict[str, list[object]]],
) -> None:
    first, second = digests_by_hash_seed["0"], digests_by_hash_seed["12345"]
    assert set(first) == {"sma_cross", "sma_extended_sl_tp", "volume_share_seeded"}
    assert first == second
    for name, (digest, fills) in first.items():
        assert isinstance(digest, str)
        assert len(digest) == 32, name
        assert isinstance(fills, int)
        assert fills > 0, f"{name} made no fills: the comparison would prove little"


def test_in_process_run_gives_the_subprocess_digest(
    digests_by_hash_seed: dict[str, dict[str, list[object]]],
) -> None:
    result = Backtest(GOLDEN, SmaCross, cash=100_000, fee_rate=0.001).run(fast=10, slow=30)
    assert result.digest == digests_by_hash_seed["0"]["sma_cross"][0]


def test_distinct_configurations_have_distinct_digests(
    digests_by_hash_seed: dict[str, dict[str, list[object]]],
) -> None:
    digests = [digest for digest, _ in digests_by_hash_seed["0"].values()]
    assert len(set(digests)) == len(digests)


@pytest.mark.parametrize(
    ("changed_options", "changed_params"),
    [
        ({}, {"fast": 12}),
        ({}, {"slow": 31}),
        ({"fee_rate": 0.0011}, {}),
        ({"cash": 100_001}, {}),
    ],
    ids=["fast", "slow", "fee_rate", "cash"],
)
def test_digest_changes_when_a_parameter_changes(
    digests_by_hash_seed: dict[str, dict[str, list[object]]],
    changed_options: dict[str, Any],
    changed_params: dict[str, int],
) -> None:
    options: dict[str, Any] = {"cash": 100_000, "fee_rate": 0.001}
    params = {"fast": 10, "slow": 30}
    base = digests_by_hash_seed["0"]["sma_cross"][0]
    changed = (
        Backtest(GOLDEN, SmaCross, **{**options, **changed_options})
        .run(**{**params, **changed_params})
        .digest
    )
    assert changed != base
