from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from backtester.runs.artifacts import publish, stats_document, write_parquet


def test_publish_renames_a_complete_directory_into_place(tmp_path: Path) -> None:
    def fill(directory: Path) -> None:
        (directory / "a.txt").write_text("a")
        (directory / "b.txt").write_text("b")

    final = publish(tmp_path / "runs", "r1", fill)
    assert final == tmp_path / "runs" / "r1"
    assert sorted(p.name for p in final.iterdir()) == ["a.txt", "b.txt"]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["r1"]


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_interrupted_publish_leaves_no_directory(tmp_path: Path, error: BaseException) -> None:
    def fill(directory: Path) -> None:
        (directory / "half.parquet").write_text("half")
        raise error

    with pytest.raises(type(error)):
        publish(tmp_path, "r1", fill)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_replace_keeps_the_previous_directory(tmp_path: Path) -> None:
    publish(tmp_path, "r1", lambda d: (d / "old.txt").write_text("old"))

    def failing(directory: Path) -> None:
        (directory / "new.txt").write_text("new")
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError):
        publish(tmp_path, "r1", failing)
    assert [p.name for p in tmp_path.iterdir()] == ["r1"]
    assert [p.name for p in (tmp_path / "r1").iterdir()] == ["old.txt"]


def test_publish_replaces_an_existing_directory_whole(tmp_path: Path) -> None:
    publish(tmp_path, "r1", lambda d: (d / "old.txt").write_text("old"))
    publish(tmp_path, "r1", lambda d: (d / "new.txt").write_text("new"))
    assert [p.name for p in tmp_path.iterdir()] == ["r1"]
    assert [p.name for p in (tmp_path / "r1").iterdir()] == ["new.txt"]


def test_parquet_bytes_depend_only_on_the_frame(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {"ts": [1, 2, 3], "side": ["buy", "sell", "buy"], "price": [1.5, math.nan, 3.0]}
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    write_parquet(frame, tmp_path / "a.parquet")
    write_parquet(frame.clone(), tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert pl.read_parquet(tmp_path / "a.parquet").equals(frame)


def test_stats_document_keeps_finite_floats_and_names_non_finite_ones() -> None:
    stats = {
        "bars": np.int64(3),
        "sharpe": math.nan,
        "calmar": math.inf,
        "worst": -math.inf,
        "ret": np.float64(0.1 + 0.2),
        "start": "2024-03-01",
    }
    assert stats_document(stats) == {
        "bars": 3,
        "sharpe": "nan",
        "calmar": "inf",
        "worst": "-inf",
        "ret": 0.30000000000000004,
        "start": "2024-03-01",
    }


def test_concurrent_publisher_of_the_same_name_wins_and_ours_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_rename = Path.rename

    def racing_rename(self: Path, target: Path) -> Path:
        # Another process finishes the same run just before our final rename.
        if self.name.endswith(".tmp") and not target.exists():
            target.mkdir()
            (target / "theirs.txt").write_text("theirs")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", racing_rename)
    final = publish(tmp_path, "r1", lambda d: (d / "ours.txt").write_text("ours"))
    assert [p.name for p in tmp_path.iterdir()] == ["r1"]
    assert [p.name for p in final.iterdir()] == ["theirs.txt"]
