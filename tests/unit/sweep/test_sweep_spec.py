"""The wire messages: round trips (hypothesis), forward compatibility, malformed input."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backtester.sweep.execute import decode_spec
from backtester.sweep.spec import (
    DataRef,
    ExecuteRun,
    MalformedMessage,
    RunCompleted,
    RunFailed,
    decode_job,
    decode_report,
    encode,
    plain_stats,
)

stat_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
ids = st.text(alphabet="0123456789abcdef", min_size=16, max_size=16)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b) and type(a) is type(b)


@given(
    sweep_id=ids,
    run_id=ids,
    index=st.integers(min_value=0, max_value=10**6),
    stats=st.dictionaries(st.text(min_size=1, max_size=12), stat_values, max_size=8),
    seconds=st.floats(min_value=0, max_value=1e6),
)
def test_completed_reports_round_trip_with_nan_and_infinite_stats(
    sweep_id: str, run_id: str, index: int, stats: dict[str, Any], seconds: float
) -> None:
    report = RunCompleted(sweep_id, index, run_id, "d" * 64, stats, "w", 2, seconds)
    back = decode_report(encode(report))
    assert isinstance(back, RunCompleted)
    assert (back.sweep_id, back.index, back.run_id, back.attempt) == (sweep_id, index, run_id, 2)
    assert list(back.stats) == list(stats)
    assert all(_same(stats[k], back.stats[k]) for k in stats)


@given(error=st.text(max_size=200), attempt=st.integers(min_value=1, max_value=100))
def test_failed_reports_round_trip(error: str, attempt: int) -> None:
    report = RunFailed("s" * 16, 3, "r" * 16, error, "w", attempt)
    assert decode_report(encode(report)) == report


@given(
    params=st.fixed_dictionaries(
        {"fast": st.integers(1, 100), "slow": st.integers(101, 500)},
    ),
    seed=st.integers(min_value=0, max_value=2**63 - 1),
    cash=st.floats(min_value=1, max_value=1e12),
)
def test_jobs_round_trip_with_their_full_run_spec(
    params: dict[str, int], seed: int, cash: float
) -> None:
    spec = decode_spec(
        {
            "data": [{"kind": "file", "path": "x.parquet", "symbol": "BTC/USDT"}],
            "strategy": {"name": "SmaCross", "params": params},
            "cash": cash,
            "seed": seed,
            "fees": {"kind": "maker_taker", "maker": 0.0002, "taker": 0.0005},
            "slippage": {"kind": "fixed_bps", "bps": 2.0},
        }
    )
    job = ExecuteRun(
        "s" * 16, 7, "r" * 16, spec, [DataRef("BTC/USDT", "h" * 64, 10, ".parquet")], "c", 3, 2.0
    )
    assert decode_job(encode(job)) == job


def test_a_newer_producer_with_an_extra_field_still_decodes() -> None:
    report = RunFailed("s" * 16, 1, "r" * 16, "boom")
    plain = msgspec.msgpack.decode(encode(report))
    plain["added_in_a_later_version"] = [1, 2, 3]
    assert decode_report(msgspec.msgpack.encode(plain)) == report


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xc1",
        b"not msgpack at all",
        msgspec.msgpack.encode({"kind": "run_completed/9", "sweep_id": "s"}),
        msgspec.msgpack.encode({"kind": "run_failed/1", "sweep_id": "s"}),
        msgspec.msgpack.encode([1, 2, 3]),
    ],
)
def test_malformed_results_are_rejected_with_a_reason(payload: bytes) -> None:
    with pytest.raises(MalformedMessage, match=r"^result: "):
        decode_report(payload)


def test_a_result_is_not_a_job() -> None:
    with pytest.raises(MalformedMessage, match=r"^job: "):
        decode_job(encode(RunFailed("s" * 16, 1, "r" * 16, "boom")))


def test_numpy_scalars_and_other_values_become_wire_values() -> None:
    stats = {"a": np.float64(1.5), "b": np.int64(3), "c": "x", "d": None, "e": [1]}
    assert plain_stats(stats) == {"a": 1.5, "b": 3, "c": "x", "d": None, "e": "[1]"}
    assert type(plain_stats(stats)["b"]) is int
