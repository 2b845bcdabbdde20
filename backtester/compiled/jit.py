"""Kernels are written as plain Python over numpy arrays, each with the one signature it is called
with, and run compiled (adr/0012):

- ahead of time: every kernel of `backtester.compiled` built by numba into one extension module,
  once per installation and kernel source (`backtester.compiled.aot`), then loaded in each process
  as a plain extension module: neither numba's import nor its per-kernel cache loads are paid;
- else just in time by numba on a kernel's first call (cached on disk), where the ahead-of-time
  build cannot be made (no C compiler; numba without `numba.pycc`);
- else as the Python they are written in (numba not installed, `NUMBA_DISABLE_JIT=1`).

`BACKTESTER_KERNELS=aot|jit|python` forces one. The backend is chosen on the first kernel call of the
process, so `import backtester` imports none of this. All three give the same floats, bit for bit:
the kernels use only IEEE operations numba compiles without reassociation or fused multiply-adds
(no fastmath); the identity tests run each kernel compiled and as Python.

Arguments are checked against the signature on every call (a handful of calls per run): the
ahead-of-time wrappers convert arrays without looking at their dtype, so a wrong one would be read
as garbage instead of failing.

A kernel may call plain functions imported from elsewhere (`from backtester.accounting.arithmetic
import cash_after_fill`): numba compiles them into the kernel (`with_numba_twins`), so a rule written
once in plain Python is the same code in the kernel, and the Python backend calls it as it is.
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

import numpy as np

P = ParamSpec("P")
R = TypeVar("R")

BACKENDS = ("aot", "jit", "python")

_SCALARS: dict[str, tuple[type, ...]] = {
    "float64": (float, int, np.floating, np.integer),
    "int64": (int, np.integer),
    "boolean": (bool, np.bool_),
}
_DTYPES = {"float64": np.float64, "int64": np.int64, "int8": np.int8, "boolean": np.bool_}


class Kernel(Generic[P, R]):
    """A kernel and its numba signature (`"void(float64[::1], int64)"`: arrays C-contiguous);
    `py_func` is the uncompiled original."""

    def __init__(self, func: Callable[P, R], signature: str) -> None:
        self.py_func = func
        self.signature = signature
        self.__doc__ = func.__doc__
        self.__name__ = func.__name__
        self.__module__ = func.__module__
        self.export_name = f"{func.__module__.rpartition('.')[2]}__{func.__name__}"
        self._params = parse_parameters(signature)
        self._compiled: Callable[..., R] | None = None

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if kwargs:
            raise TypeError(f"kernel {self.__name__} takes positional arguments only")
        self.check(args)
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = _backend().function(self)
        return compiled(*args)

    def check(self, args: tuple[Any, ...]) -> None:
        if len(args) != len(self._params):
            raise TypeError(
                f"kernel {self.__name__} takes {len(self._params)} arguments, got {len(args)}"
            )
        for position, (value, (kind, ndim)) in enumerate(zip(args, self._params, strict=True)):
            if ndim:
                if (
                    isinstance(value, np.ndarray)
                    and value.dtype == _DTYPES[kind]
                    and value.ndim == ndim
                    and value.flags.c_contiguous
                ):
                    continue
                got = (
                    f"a {value.ndim}-d {value.dtype} array (C-contiguous: {value.flags.c_contiguous})"
                    if isinstance(value, np.ndarray)
                    else type(value).__name__
                )
                raise TypeError(
                    f"kernel {self.__name__}: argument {position} must be a C-contiguous "
                    f"{ndim}-d {kind} array, got {got}"
                )
            if not isinstance(value, _SCALARS[kind]) or (
                kind != "boolean" and isinstance(value, bool)
            ):
                raise TypeError(
                    f"kernel {self.__name__}: argument {position} must be {kind}, "
                    f"got {type(value).__name__}"
                )


def kernel(signature: str) -> Callable[[Callable[P, R]], Kernel[P, R]]:
    def wrap(func: Callable[P, R]) -> Kernel[P, R]:
        return Kernel(func, signature)

    return wrap


def parse_parameters(signature: str) -> tuple[tuple[str, int], ...]:
    """(dtype name, number of dimensions: 0 for a scalar) of each parameter of a numba signature."""
    opening = _matching_open(signature)
    inner = signature[opening + 1 : -1]
    params = []
    for part in _split_top_level(inner):
        name, _, dims = part.partition("[")
        name = name.strip()
        if name not in _DTYPES:
            raise ValueError(f"unsupported kernel parameter type {part!r} in {signature!r}")
        ndim = len(_split_top_level(dims[:-1])) if dims else 0
        if ndim and not dims[:-1].replace(" ", "").endswith("::1"):
            raise ValueError(f"array parameters must be C-contiguous ([::1]): {signature!r}")
        params.append((name, ndim))
    return tuple(params)


def _matching_open(signature: str) -> int:
    """The index of the parenthesis opening the parameter list (the one closing the signature)."""
    if not signature.endswith(")"):
        raise ValueError(f"not a signature: {signature!r}")
    depth = 0
    for i in range(len(signature) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(signature[i], 0)
        if depth == 0:
            return i
    raise ValueError(f"unbalanced signature: {signature!r}")


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    last = text[start:].strip()
    return [*parts, last] if last else parts


def with_numba_twins(kernel: Kernel[..., Any], njit: Callable[..., Any]) -> Callable[..., Any]:
    """The kernel's function as numba should compile it: a copy whose globals name the numba
    twins of the plain functions it calls from other modules (numba resolves a function's globals
    when it compiles it), those twins built the same way in turn. The modules are left as they
    are: every other caller keeps the plain functions."""
    twins: dict[Any, Any] = {}

    def copy(func: types.FunctionType, own: str | None) -> types.FunctionType:
        namespace = dict(func.__globals__)
        for name in _global_names(func.__code__):
            value = namespace.get(name)
            # Not the kernel module's own functions: beside its kernels it holds the Python
            # wrappers around them, which must stay Python.
            if isinstance(value, types.FunctionType) and value.__module__ != own:
                if value not in twins:
                    # A hint (`compiled.hints`) brings its own twin: its Python body does nothing.
                    own_twin = getattr(value, "numba_twin", None)
                    twins[value] = own_twin() if own_twin is not None else njit(copy(value, None))
                namespace[name] = twins[value]
        twin = types.FunctionType(
            func.__code__, namespace, func.__name__, func.__defaults__, func.__closure__
        )
        twin.__qualname__ = func.__qualname__
        twin.__module__ = func.__module__
        return twin

    assert isinstance(kernel.py_func, types.FunctionType)
    return copy(kernel.py_func, kernel.__module__)


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # a closure defined inside the kernel
            names |= _global_names(const)
    return names


class Backend:
    def __init__(self, name: str, module: Any = None) -> None:
        self.name = name
        self._module = module

    def function(self, kernel: Kernel[..., Any]) -> Callable[..., Any]:
        if self.name == "aot":
            compiled: Callable[..., Any] = getattr(self._module, kernel.export_name)
            return compiled
        if self.name == "jit":
            import numba  # noqa: PLC0415 (only where the ahead-of-time build is unavailable)

            # cache=True keeps the machine code next to the module, so later processes skip
            # compiling. No signature: numba types read-only arrays (polars' views) apart.
            source = with_numba_twins(kernel, numba.njit)
            jitted: Callable[..., Any] = numba.njit(cache=True, nogil=True)(source)
            return jitted
        return kernel.py_func


_chosen: Backend | None = None


def _backend() -> Backend:
    global _chosen  # noqa: PLW0603 (one choice per process, made on the first kernel call)
    if _chosen is None:
        _chosen = choose_backend()
    return _chosen


def active_backend() -> str:
    """The backend this process runs its kernels on (choosing it if no kernel ran yet)."""
    return _backend().name


def choose_backend() -> Backend:
    wanted = os.environ.get("BACKTESTER_KERNELS", "")
    if wanted and wanted not in BACKENDS:
        raise ValueError(f"BACKTESTER_KERNELS must be one of {', '.join(BACKENDS)}, got {wanted!r}")
    if wanted == "python" or os.environ.get("NUMBA_DISABLE_JIT") == "1":
        return Backend("python")
    if wanted in ("", "aot"):
        from backtester.compiled import aot  # noqa: PLC0415 (keeps import backtester light)

        module, why = aot.load_or_build()
        if module is not None:
            return Backend("aot", module)
        if wanted == "aot":
            raise RuntimeError(f"the ahead-of-time kernels are unavailable: {why}")
        notice("kernels.jit", reason=why, detail="numba compiles each kernel on its first call")
    try:
        import numba  # noqa: F401, PLC0415
    except ImportError:
        if wanted == "jit":
            raise
        notice("kernels.python", reason="numba is not installed", detail="kernels run as Python")
        return Backend("python")
    return Backend("jit")


def notice(event: str, **fields: str) -> None:
    """One log line through the application's logging (JSON lines under `--log-json`)."""
    import structlog  # noqa: PLC0415

    structlog.get_logger("backtester.kernels").warning(event, **fields)
