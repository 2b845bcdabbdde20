"""A sweep worker keeps the memory its runs free: arrays of a year-long run's size, allocated and
freed over and over, are served from the heap again instead of being faulted in anew."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from tests.sweep_support import subprocess_env

_CYCLES = """
import resource, sys
import numpy as np
from backtester.sweep.memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
def run():
    columns = [np.ones(525_600) for _ in range(6)]  # six columns of a year of minute bars
    del columns
run()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    run()
print(kept, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def _faults_per_cycle(mode: str) -> tuple[bool, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CYCLES, mode],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[-2] == "True", float(out[-1])


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc"
)
def test_freed_memory_is_reused_not_faulted_in_again() -> None:
    kept, faults = _faults_per_cycle("keep")
    assert kept
    assert faults < 50
    # The same cycles without it: thousands of its 25 MB of pages are faulted in again each time.
    _, default = _faults_per_cycle("default")
    assert default > 1_000


def test_malloc_settings_of_the_environment_are_left_alone() -> None:
    env = subprocess_env(MALLOC_TRIM_THRESHOLD_="131072")
    code = "from backtester.sweep.memory import keep_freed_memory; print(keep_freed_memory())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[-1] == "False"
