"""The ahead-of-time build of every kernel of `backtester.compiled` into one extension module
(adr/0012): built once per installation and kernel source, with a one-line notice, then loaded by
each process in about a millisecond without importing numba.

The module's name carries a hash of the sources of this package (kernels and build recipe) and of
the plain functions they call from elsewhere (`ELSEWHERE`), of numpy's version and of the
interpreter, so an edited kernel or an upgraded numpy is built anew rather than loaded stale. It
lives in this package's `__pycache__` when that is writable (where numba's own cache would go),
else in the user's cache directory; `BACKTESTER_KERNEL_CACHE` names another directory. A build writes into a fresh temporary directory and moves the finished file in
place, so concurrent first runs (a sweep's workers) each see either no module or a whole one.

    python -m backtester.compiled.aot [--quiet]   # build now (the install scripts do); say where
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import platform
import shutil
import sys
import sysconfig
import tempfile
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from backtester.compiled.jit import Kernel, notice, with_numba_twins

PACKAGE_DIR = Path(__file__).resolve().parent
_SOURCE_ROOT = PACKAGE_DIR.parents[1]  # where the `backtester` package is
CACHE_ENV = "BACKTESTER_KERNEL_CACHE"
PREFIX = "_kernels_"
_NOT_KERNEL_MODULES = frozenset({"__init__", "jit", "aot"})
# Modules outside this package whose plain functions kernels call (compiled into them): an edit
# there changes the kernels too. A test checks that every such module is named here.
ELSEWHERE = (
    "backtester.accounting.arithmetic",
    "backtester.accounting.limits",
    "backtester.accounting.marking",
    "backtester.domain.grid",
    "backtester.domain.volume_share",
    "backtester.domain.touch",
)


def kernel_modules() -> list[str]:
    """The modules of this package that define kernels (all but the machinery)."""
    return sorted(
        f"{__package__}.{path.stem}"
        for path in PACKAGE_DIR.glob("*.py")
        if path.stem not in _NOT_KERNEL_MODULES
    )


def all_kernels() -> list[Kernel[..., Any]]:
    kernels: dict[str, Kernel[..., Any]] = {}
    for name in kernel_modules():
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, Kernel) and value.__module__ == name:
                kernels[value.export_name] = value
    return [kernels[name] for name in sorted(kernels)]


def source_files() -> list[Path]:
    """Every source the built module is made from, without importing any of it."""
    elsewhere = [_SOURCE_ROOT.joinpath(*name.split(".")).with_suffix(".py") for name in ELSEWHERE]
    return [*sorted(PACKAGE_DIR.glob("*.py")), *elsewhere]


def module_name() -> str:
    digest = hashlib.blake2b(digest_size=10)
    for path in source_files():
        digest.update(path.name.encode() + b"\x00" + path.read_bytes())
    for part in (np.__version__, sys.version, sys.platform, _ext_suffix()):
        digest.update(part.encode() + b"\x00")
    return PREFIX + digest.hexdigest()


def cache_dirs() -> list[Path]:
    """Where a built module is looked for, in order; it is built into the first writable one."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return [Path(override)]
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return [PACKAGE_DIR / "__pycache__", user / "backtester" / "kernels"]


def load_or_build() -> tuple[ModuleType | None, str]:
    """The kernels' extension module, or None and why it could not be had."""
    name = module_name()
    filename = name + _ext_suffix()
    for directory in cache_dirs():
        path = directory / filename
        if path.is_file():
            try:
                return load_module(name, path), ""
            except ImportError:
                continue  # a damaged file: build it again
    return _build_somewhere(name, filename)


def _build_somewhere(name: str, filename: str) -> tuple[ModuleType | None, str]:
    try:
        pycc = import_pycc()
    except ImportError as exc:
        return None, f"numba cannot build them ahead of time ({exc})"
    for directory in cache_dirs():
        try:
            directory.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=name, dir=directory))
        except OSError:
            continue
        notice(
            "kernels.compiling",
            detail="once for this installation and version (about a minute on 2 cores); "
            "later processes load them",
            directory=str(directory),
        )
        try:
            path = build(pycc, name, all_kernels(), scratch, directory / filename)
        except Exception as exc:  # a missing C compiler, a linker error: fall back to the JIT
            return None, f"the ahead-of-time build failed ({type(exc).__name__}: {exc})"
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        _remove_other_builds(directory, keep=path)
        return load_module(name, path), ""
    return None, f"no writable directory for them among {[str(d) for d in cache_dirs()]}"


def import_pycc() -> Any:
    with warnings.catch_warnings():
        # "pycc is pending deprecation": adr/0012 says what happens when it is gone.
        warnings.simplefilter("ignore")
        return importlib.import_module("numba.pycc")


def build(pycc: Any, name: str, kernels: list[Kernel[..., Any]], scratch: Path, path: Path) -> Path:
    """Compile `kernels` into the extension module `name` in `scratch`, then move it to `path`."""
    import numba  # noqa: PLC0415 (only a build imports it)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cc = pycc.CC(name)
        cc.output_dir = str(scratch)
        cc.output_file = path.name
        cc.verbose = False
        cc.target_cpu = _target_cpu()
        for k in kernels:
            cc.export(k.export_name, k.signature)(with_numba_twins(k, numba.njit))
        cc.compile()
    os.replace(scratch / path.name, path)
    return path


def load_module(name: str, path: Path) -> ModuleType:
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _remove_other_builds(directory: Path, keep: Path) -> None:
    for old in directory.glob(f"{PREFIX}*{_ext_suffix()}"):
        if old != keep:
            # In use (Windows) or gone already: harmless, it only takes disk space.
            with contextlib.suppress(OSError):
                old.unlink()


def _target_cpu() -> str:
    """x86-64-v2 (SSE4.2: Intel CPUs since 2008, AMD since 2011) on x86-64, for its rounding instruction
    (np.rint is a libm call on the baseline x86-64, which makes the tick-sum kernels 1.8x slower);
    elsewhere the platform's baseline. Never the host's own CPU: a copied cache must still run."""
    return "x86-64-v2" if platform.machine().lower() in ("x86_64", "amd64") else ""


def _ext_suffix() -> str:
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    return str(suffix) if suffix else importlib.machinery.EXTENSION_SUFFIXES[0]


def main(argv: list[str]) -> int:
    module, why = load_or_build()
    if module is None:
        print(f"kernels: not built ahead of time: {why}", file=sys.stderr)
        return 1
    if "--quiet" not in argv:
        print(f"kernels: {module.__file__}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
