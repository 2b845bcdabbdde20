"""Input columns and parameters of the indicator functions, checked once at the boundary."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

Column = np.ndarray | pl.Series


def as_column(values: Any, name: str = "values") -> np.ndarray:
    """A contiguous float64 copy-free view where possible of a numpy array, polars Series or
    sequence (polars nulls become NaN)."""
    if isinstance(values, pl.Series):
        array = values.cast(pl.Float64).to_numpy()
    else:
        array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return np.ascontiguousarray(array)


def as_columns(**columns: Any) -> list[np.ndarray]:
    """Several columns of one frame, which must have the same length."""
    arrays = [as_column(values, name) for name, values in columns.items()]
    lengths = {len(a) for a in arrays}
    if len(lengths) > 1:
        sizes = ", ".join(f"{n}={len(a)}" for n, a in zip(columns, arrays, strict=True))
        raise ValueError(f"columns differ in length: {sizes}")
    return arrays


def first_valid(*arrays: np.ndarray) -> int:
    """The first row where no input is NaN (leading NaN, such as another indicator's warm-up, are
    skipped the way TA-Lib's Python wrapper skips them); len if there is none."""
    if not arrays or not len(arrays[0]):
        return 0
    valid = ~np.isnan(arrays[0])
    for array in arrays[1:]:
        valid &= ~np.isnan(array)
    found = np.flatnonzero(valid)
    return int(found[0]) if len(found) else len(arrays[0])


def period(name: str, value: int, minimum: int = 2) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not minimum <= value <= 100_000:
        raise ValueError(f"{name} must be in [{minimum}, 100000], got {value}")
    return int(value)


def empty_like(values: np.ndarray) -> np.ndarray:
    return np.full(len(values), np.nan)
