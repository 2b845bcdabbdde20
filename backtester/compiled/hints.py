"""Hints to the processor that change no result: plain Python functions that do nothing, whose
numba twins (`compiled.jit.with_numba_twins` takes a function's `numba_twin`) emit the
instruction."""

from __future__ import annotations

from typing import Any

import numpy as np


def prefetch(values: np.ndarray, index: int) -> None:
    """Ask for `values[index]` to be brought into the cache ahead of its use (an index past the
    end is allowed: a prefetch never faults, and nothing is read)."""


def _numba_prefetch() -> Any:
    """`prefetch` as numba compiles it: LLVM's prefetch of the element's address, for a read, kept
    in every cache level."""
    from llvmlite import ir  # noqa: PLC0415 (only where numba compiles the kernels)
    from numba.core import types  # noqa: PLC0415
    from numba.extending import intrinsic  # noqa: PLC0415

    @intrinsic
    def twin(typingctx: Any, values: Any, index: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            array = context.make_array(signature.args[0])(context, builder, args[0])
            address = builder.bitcast(
                builder.gep(array.data, [args[1]]), ir.IntType(8).as_pointer()
            )
            word = ir.IntType(32)
            function = builder.module.declare_intrinsic(
                "llvm.prefetch",
                [address.type],
                ir.FunctionType(ir.VoidType(), [address.type, word, word, word]),
            )
            # rw = 0 (a read), locality = 3 (keep it in every level), cache type = 1 (data).
            builder.call(function, [address, word(0), word(3), word(1)])
            return context.get_dummy_value()

        return types.void(values, index), codegen

    return twin


prefetch.numba_twin = _numba_prefetch  # type: ignore[attr-defined]
