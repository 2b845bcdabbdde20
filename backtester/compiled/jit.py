"""Kernels are written as plain Python over numpy arrays and compiled by numba on their first call.

Compiling lazily keeps `import backtester` free of numba's import and compile time for runs that never
reach a kernel. Without numba (or with NUMBA_DISABLE_JIT=1) the same Python function runs: slower,
with identical results, because the kernels use only IEEE operations numba compiles without
reassociation or fused multiply-adds (no fastmath).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class Kernel(Generic[P, R]):
    """A function compiled on its first call; `py_func` is the uncompiled original."""

    def __init__(self, func: Callable[P, R]) -> None:
        self.py_func = func
        self._compiled: Callable[P, R] | None = None
        self.__doc__ = func.__doc__
        self.__name__ = func.__name__

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = _compile(self.py_func)
        return compiled(*args, **kwargs)


def kernel(func: Callable[P, R]) -> Kernel[P, R]:
    return Kernel(func)


def _compile(func: Callable[P, R]) -> Callable[P, R]:
    try:
        import numba  # noqa: PLC0415 (imported on first compile: keeps `import backtester` light)
    except ImportError:
        return func
    # cache=True keeps the machine code next to the module, so later processes skip compiling.
    compiled: Callable[P, R] = numba.njit(cache=True, nogil=True)(func)
    return compiled
