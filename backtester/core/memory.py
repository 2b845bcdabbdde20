"""Column-long buffers a run writes from start to end (adr/0025).

numpy advises the kernel to back every array of 4 MB or more with transparent huge pages
(`madvise(MADV_HUGEPAGE)`). Where huge pages are given on request only (the common
`enabled=madvise`, `defrag=madvise` setting), the first touch of such an array can wait while the
kernel compacts memory for each 2 MB page: 30-45 ms of CPU for the three equity columns of a year
of minutes in a fresh process, measured on the benchmark machine, against 5-12 ms in ordinary
pages. A run's columns are written once, front to back, and read a few times: huge pages gain them
nothing measurable, so they are allocated without the advice."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np


def _advice_switch() -> Callable[[bool], bool] | None:
    """numpy's switch for the advice (it returns the previous setting), where this numpy has one."""
    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):  # numpy 2, numpy 1.26
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        switch: Callable[[bool], bool] | None = getattr(module, "_set_madvise_hugepage", None)
        if switch is not None:
            return switch
    return None


_SWITCH = _advice_switch()


def columns(count: int, length: int) -> np.ndarray:
    """An uninitialized C-contiguous (count, length) float64 block, without huge-page advice.

    numpy's advice is a process-wide switch: it is off only while this block is allocated, and an
    array another thread allocates meanwhile merely goes without the advice too."""
    if _SWITCH is None:
        return np.empty((count, length))
    advised = _SWITCH(False)
    try:
        return np.empty((count, length))
    finally:
        _SWITCH(advised)
