"""The kernels' backends (adr/0012): the ahead-of-time module holds every kernel, arguments are
checked against the signatures, and the just-in-time fallback gives the same result bit for bit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import structlog.testing

from backtester import Backtest
from backtester.accounting import arithmetic, limits, marking
from backtester.compiled import aot, drawdown, hints, indicators, signal_path
from backtester.compiled.jit import Backend, active_backend, parse_parameters, with_numba_twins
from backtester.domain import grid, touch, volume_share
from backtester.risk import rules
from backtester.strategies import SmaCross
from tests.unit.compiled import helper_arithmetic, helper_kernels

REPO = Path(__file__).resolve().parents[3]
GOLDEN_BARS = REPO / "golden" / "data" / "binance_BTC-USDT_1m.parquet"
HAS_COMPILER = shutil.which("cc") is not None or shutil.which("gcc") is not None


def test_signatures_parse_into_dtypes_and_dimensions() -> None:
    assert parse_parameters("Tuple((float64, int64))(int64[::1], float64[:, ::1], boolean)") == (
        ("int64", 1),
        ("float64", 2),
        ("boolean", 0),
    )
    assert parse_parameters("void()") == ()
    with pytest.raises(ValueError, match="C-contiguous"):
        parse_parameters("void(float64[:])")
    with pytest.raises(ValueError, match="unsupported"):
        parse_parameters("void(float32[::1])")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.arange(4), 3), "argument 0 must be a C-contiguous 1-d float64 array, got a 1-d int64"),
        ((np.arange(8.0)[::2], 3), "C-contiguous: False"),
        ((np.zeros((2, 2)), 3), "got a 2-d float64"),
        (([1.0, 2.0], 3), "got list"),
        ((np.arange(4.0), 3.0), "argument 1 must be int64, got float"),
        ((np.arange(4.0), True), "argument 1 must be int64, got bool"),
        ((np.arange(4.0),), "takes 2 arguments, got 1"),
    ],
)
def test_a_kernel_refuses_arguments_its_signature_does_not_name(
    args: tuple[object, ...], message: str
) -> None:
    with pytest.raises(TypeError, match="grid_decimals") as raised:
        indicators.grid_decimals(*args)  # type: ignore[arg-type]
    assert message in str(raised.value)


def test_read_only_arrays_and_numpy_scalars_are_accepted() -> None:
    prices = np.array([1.25, 2.5, 3.75])
    prices.setflags(write=False)  # as polars' to_numpy() views are
    assert indicators.grid_decimals(prices, np.int64(8)) == 2


def test_every_kernel_of_the_package_is_in_the_ahead_of_time_module() -> None:
    if not HAS_COMPILER:
        pytest.skip("no C compiler: the kernels run just in time")
    assert active_backend() == "aot"
    module, why = aot.load_or_build()
    assert module is not None, why
    names = [k.export_name for k in aot.all_kernels()]
    assert "signal_path___run_plan" in names
    assert "drawdown__mark_to_market" in names
    assert all(callable(getattr(module, name)) for name in names)


def test_a_changed_kernel_source_is_a_new_module_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "compiled"
    shutil.copytree(aot.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(aot, "PACKAGE_DIR", package)
    before = aot.module_name()
    assert before == aot.module_name()
    kernel_file = package / "drawdown.py"
    kernel_file.write_text(kernel_file.read_text() + "\n# edited\n")
    assert aot.module_name() != before


def test_only_the_current_build_is_kept(tmp_path: Path) -> None:
    suffix = aot._ext_suffix()
    current = tmp_path / f"{aot.PREFIX}new{suffix}"
    for name in (f"{aot.PREFIX}old{suffix}", f"{aot.PREFIX}new{suffix}", "unrelated.so"):
        (tmp_path / name).write_bytes(b"")
    aot._remove_other_builds(tmp_path, keep=current)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([current.name, "unrelated.so"])


def test_the_just_in_time_fallback_gives_the_same_digest() -> None:
    code = (
        "from backtester import Backtest\n"
        "from backtester.compiled.jit import active_backend\n"
        "from backtester.strategies import SmaCross\n"
        f"bt = Backtest({str(GOLDEN_BARS)!r}, SmaCross, cash=100_000, fee_rate=0.001, "
        "mode='compiled')\n"
        "print(active_backend(), bt.run(fast=10, slow=30).digest)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO), "BACKTESTER_KERNELS": "jit"},
        capture_output=True,
        text=True,
        # In a fresh checkout numba compiles every kernel the run calls: 300 s ran out at load 16.
        timeout=900,
        check=True,
    )
    backend, digest = done.stdout.split()
    here = Backtest(GOLDEN_BARS, SmaCross, cash=100_000, fee_rate=0.001, mode="compiled")
    assert (backend, digest) == ("jit", here.run(fast=10, slow=30).digest)


def test_an_unknown_backend_is_refused() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from backtester.compiled import drawdown\n"
            "import numpy as np\ndrawdown.majority_step(np.arange(3))",
        ],
        env={**os.environ, "PYTHONPATH": str(REPO), "BACKTESTER_KERNELS": "fast"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "BACKTESTER_KERNELS must be one of aot, jit, python, got 'fast'" in done.stderr
    assert drawdown.majority_step(np.arange(3, dtype=np.int64)) == 1


def _helper_case() -> tuple[np.ndarray, float]:
    prices = np.round(np.linspace(100.0, 200.0, 1_000), 2)
    return prices, helper_kernels.cash_after_buys.py_func(prices, 0.37, 0.001)


def test_a_kernel_calling_plain_functions_compiles_just_in_time_to_the_same_float() -> None:
    prices, expected = _helper_case()
    compiled = Backend("jit").function(helper_kernels.cash_after_buys)
    assert compiled(prices, 0.37, 0.001) == expected
    # The modules keep their plain functions.
    assert helper_kernels.booked_cash is helper_arithmetic.booked_cash
    assert helper_arithmetic.booked_cash.__globals__["fee_of"] is helper_arithmetic.fee_of


@pytest.mark.skipif(not HAS_COMPILER, reason="no C compiler")
def test_a_kernel_calling_plain_functions_builds_ahead_of_time_to_the_same_float(
    tmp_path: Path,
) -> None:
    prices, expected = _helper_case()
    name = "_kernels_helper_test"
    path = aot.build(
        aot.import_pycc(),
        name,
        [helper_kernels.cash_after_buys],
        tmp_path,
        tmp_path / f"{name}{aot._ext_suffix()}",
    )
    module = aot.load_module(name, path)
    assert module.helper_kernels__cash_after_buys(prices, 0.37, 0.001) == expected
    assert helper_kernels.booked_cash is helper_arithmetic.booked_cash


def test_a_build_is_announced_in_one_line_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first run that has to build the kernels says so before the wait, not after it."""
    monkeypatch.setenv(aot.CACHE_ENV, str(tmp_path))
    logged_before_build: list[str] = []

    def interrupted_build(*_: object) -> Path:
        logged_before_build.extend(entry["event"] for entry in captured)
        raise RuntimeError("interrupted")

    monkeypatch.setattr(aot, "build", interrupted_build)
    with structlog.testing.capture_logs() as captured:
        module, why = aot.load_or_build()
    assert logged_before_build == ["kernels.compiling"]
    assert "once for this installation" in captured[0]["detail"]
    assert captured[0]["directory"] == str(tmp_path)
    assert module is None and "RuntimeError: interrupted" in why  # the JIT fallback takes over


def test_every_module_a_kernel_calls_into_is_part_of_the_build_hash() -> None:
    # An edit to a plain function a kernel calls changes the kernel: it must change the module name.
    called: set[str] = set()

    def record(func: types.FunctionType) -> types.FunctionType:
        called.add(func.__module__)
        return func

    for k in aot.all_kernels():
        with_numba_twins(k, record)
    assert "backtester.accounting.arithmetic" in called
    hashed = {path.resolve() for path in aot.source_files()}
    for name in called:
        origin = sys.modules[name].__file__
        assert origin is not None and Path(origin).resolve() in hashed, name


def test_a_hint_compiles_to_its_own_twin_not_its_python_body() -> None:
    twin = with_numba_twins(signal_path._run_plan, lambda func: func)
    compiled = twin.__globals__["prefetch"]
    assert compiled is not hints.prefetch
    assert getattr(compiled, "__code__", None) is not hints.prefetch.__code__
    assert hints.prefetch(np.zeros(1), 5) is None  # as Python: nothing, even past the end


def test_the_order_path_kernel_books_with_the_accounts_arithmetic() -> None:
    twin = with_numba_twins(signal_path._run_plan, lambda func: func)
    for name in ("book_fill", "fill_notional", "opening_cost", "quantity_for_budget"):
        assert twin.__globals__[name].__code__ is getattr(arithmetic, name).__code__


def test_the_order_path_kernel_snaps_to_grids_with_the_instruments_rule() -> None:
    twin = with_numba_twins(signal_path._run_plan, lambda func: func)
    for name in ("floor_on_grid", "nearest_on_grid"):
        assert twin.__globals__[name].__code__ is getattr(grid, name).__code__
    assert "backtester.domain.grid" in aot.ELSEWHERE


def test_the_order_path_kernel_slips_by_volume_share_with_the_models_rule() -> None:
    twin = with_numba_twins(signal_path._run_plan, lambda func: func)
    for name in ("volume_capacity", "volume_share_price"):
        assert twin.__globals__[name].__code__ is getattr(volume_share, name).__code__
    assert "backtester.domain.volume_share" in aot.ELSEWHERE


def test_the_order_path_kernel_checks_position_limits_with_the_risk_rule() -> None:
    twin = with_numba_twins(signal_path._run_plan, lambda func: func)
    assert twin.__globals__["max_position_breach"].__code__ is limits.max_position_breach.__code__
    assert rules.limits is limits  # risk's check_max_position asks the same function
    assert "backtester.accounting.limits" in aot.ELSEWHERE


def test_the_order_path_kernel_liquidates_with_the_accounts_and_venues_rules() -> None:
    twin = with_numba_twins(signal_path._run_plan, lambda func: func)
    for name in (
        "bracket_liquidation_price",
        "bankruptcy_price",
        "liquidation_fill_price",
        "liquidation_fee",
        "realized_pnl",
    ):
        assert twin.__globals__[name].__code__ is getattr(arithmetic, name).__code__
    assert twin.__globals__["reach_price"].__code__ is touch.reach_price.__code__
    assert "backtester.domain.touch" in aot.ELSEWHERE


def test_the_order_path_kernel_marks_to_market_with_the_equity_curves_rule() -> None:
    # The equity a compiled run digests (marked in its loop) and the equity frame it shows (the
    # pass over the books) are one function's arithmetic.
    for kernel in (signal_path._run_plan, drawdown.mark_to_market):
        twin = with_numba_twins(kernel, lambda func: func)
        for name in ("mark_bar", "longest_under_water"):
            assert twin.__globals__[name].__code__ is getattr(marking, name).__code__
    assert "backtester.accounting.marking" in aot.ELSEWHERE
