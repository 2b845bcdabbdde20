"""A sweep worker keeps the memory it frees for its next run (`adr/0021`).

A run over a year of minute bars allocates and frees arrays of a few megabytes. glibc's malloc
hands freed memory at the top of its heap back to the kernel once more than its trim threshold is
free, so every run asked for the same pages again and the kernel faulted them in and zeroed them:
about 2 000 page faults and 7 ms of system time a run of 40 ms, and memory traffic that two
workers on one machine pay for together. A worker runs runs of the same size one after the
other, so it keeps what it freed: the heap is trimmed only above 1 GiB free, and the mmap
threshold is fixed at 32 MiB (glibc's largest), so arrays below it come from the heap and are
reused rather than mapped and unmapped per run. The worker's memory stays at its largest run's.

Only glibc has these knobs (`mallopt`); elsewhere nothing changes. A user who set glibc's own
variables (`MALLOC_TRIM_THRESHOLD_`, `MALLOC_MMAP_THRESHOLD_`) keeps them.
"""

from __future__ import annotations

import ctypes
import os
import platform

import structlog

log = structlog.get_logger("backtester.sweep.memory")

# glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 1 << 30
MMAP_THRESHOLD = 32 << 20  # glibc refuses more on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


def keep_freed_memory() -> bool:
    """Set this process's malloc to keep freed memory for reuse; True when it did."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in _USER_SETTINGS):
        log.info("worker.memory", kept=False, reason="malloc settings given in the environment")
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    kept = bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    )
    log.info("worker.memory", kept=kept, trim_threshold=TRIM_THRESHOLD, mmap=MMAP_THRESHOLD)
    return kept
