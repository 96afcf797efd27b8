"""SLICE with constant begin and size (tf.slice; a copy of a window of the input).

TFLM's SLICE copies input[begin[d] : begin[d] + size[d]] on every axis, a size of -1
meaning "to the end of the axis"; input and output share their quantization (the
converter gives them one). The window becomes STRIDED_SLICE's plan (strides 1: a first
input element and up to four (count, step) loops) and runs on its kernel.
"""

from __future__ import annotations

import numpy as np

from drsn_edge.errors import UserError
from firmware_gen.ops.base import layer_name, register
from firmware_gen.ops.strided_slice import STRIDED_SLICE_PARAMS, checked_plan


def window(k, op) -> tuple[list[int], list[int]]:
    """(begin, size) per axis, sizes of -1 resolved; UserError when not a constant window
    inside the input."""
    x, y = op.inputs[0], op.outputs[0]
    where = f"op {k} SLICE ({layer_name(y)})"
    if any(t is None or t.data is None for t in op.inputs[1:3]):
        raise UserError(f"{where} has run-time begin/size; the compiled runtime slices with constant ones")
    begin, size = (np.asarray(t.data).reshape(-1).astype(np.int64).tolist() for t in op.inputs[1:3])
    if not len(begin) == len(size) == len(x.shape):
        raise UserError(f"{where} slices {len(begin)} of {len(x.shape)} axes; the compiled runtime "
                        f"takes one begin/size per axis")
    size = [int(d) - b if s == -1 else s for b, s, d in zip(begin, size, x.shape)]
    for d, (b, s) in enumerate(zip(begin, size)):
        if b < 0 or s < 1 or b + s > int(x.shape[d]):
            raise UserError(f"{where}: begin {b} size {s} do not fit axis {d} of size {x.shape[d]}")
    if len(x.scales) and len(y.scales) and (float(x.scale) != float(y.scale) or x.zero_point != y.zero_point):
        raise UserError(f"{where}: input and output quantization differ; the compiled runtime "
                        f"slices without requantizing (as TFLM)")
    return begin, size


def prepare(k, op) -> dict:
    x, y = op.inputs[0], op.outputs[0]
    begin, size = window(k, op)
    return checked_plan(f"op {k} SLICE ({layer_name(y)})", x, y, begin,
                        [b + s for b, s in zip(begin, size)], [1] * len(begin))


@register("SLICE", kernels=("strided_slice.c",), kernel_name="dk_strided_slice_s8",
          tests=("tests/test_kernels.py::test_slice_matches_tflm",))
def emit(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    begin, size = window(k, op)
    q = prepare(k, op)
    em.comment(k, op, f"begin {begin} size {size}; copy from element {q['start']}, loops {q['count']} "
                      f"steps {q['step']}")
    em.params(STRIDED_SLICE_PARAMS, f"L{k}_p", q)
    em.call(f"dk_strided_slice_s8(&L{k}_p, {em.ptr(x)}, {em.ptr(y)})")
