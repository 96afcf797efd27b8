"""SPLIT and SPLIT_V with a constant axis (tf.split into equal parts or given sizes).

TFLM copies consecutive pieces of the input along `axis` into the outputs, without
requantizing (input and outputs share their quantization; the converter makes them so,
anything else is refused). Each output is a window of the input, so each becomes
STRIDED_SLICE's plan (strides 1) and one dk_strided_slice_s8 call. These are the only
operators of the compiled runtime with several outputs: the memory planner places every
output; the layer table (and the DEBUG dump) reports the first.
"""

from __future__ import annotations

import numpy as np

from drsn_edge.errors import UserError
from firmware_gen.ops.base import checked_axis, layer_name, numel, register
from firmware_gen.ops.strided_slice import STRIDED_SLICE_PARAMS, plan


def pieces(k, op) -> tuple[int, list[int]]:
    """(axis, size of each output along it), checked against the input's shape."""
    name = op.opcode
    if name == "SPLIT":
        axis_t, x = op.inputs[0], op.inputs[1]
    else:
        x, _, axis_t = op.inputs[:3]
    where = f"op {k} {name} ({layer_name(op.outputs[0])})"
    if axis_t is None or axis_t.data is None:
        raise UserError(f"{where} has a run-time axis; the compiled runtime splits along a constant one")
    rank = len(x.shape)
    axis = checked_axis(where, int(np.asarray(axis_t.data).reshape(-1)[0]), rank, "input")
    sizes = [int(y.shape[axis]) for y in op.outputs]
    if sum(sizes) != int(x.shape[axis]) or any(
            list(y.shape[:axis]) + list(y.shape[axis + 1:]) != list(x.shape[:axis]) + list(x.shape[axis + 1:])
            for y in op.outputs):
        raise UserError(f"{where}: outputs {[list(y.shape) for y in op.outputs]} do not tile the input "
                        f"{list(x.shape)} along axis {axis}")
    for y in op.outputs:
        if x.type != "INT8" or y.type != "INT8" or float(x.scale) != float(y.scale) or x.zero_point != y.zero_point:
            raise UserError(f"{where}: input and outputs differ in type or quantization; the compiled "
                            f"runtime splits int8 without requantizing (as TFLM)")
    return axis, sizes


def data_input(op):
    return op.inputs[1] if op.opcode == "SPLIT" else op.inputs[0]


def prepare(k, op) -> list[dict]:
    """One STRIDED_SLICE plan per output."""
    x = data_input(op)
    axis, sizes = pieces(k, op)
    plans, at = [], 0
    for y, n in zip(op.outputs, sizes):
        begin = [at if d == axis else 0 for d in range(len(x.shape))]
        end = [at + n if d == axis else int(x.shape[d]) for d in range(len(x.shape))]
        p = plan(x.shape, begin, end, [1] * len(x.shape))
        if isinstance(p, str) or int(np.prod(p["count"])) != numel(y.shape):
            raise UserError(f"op {k} {op.opcode} ({layer_name(y)}): piece {at}..{at + n} of axis {axis} "
                            f"cannot be copied ({p if isinstance(p, str) else 'size mismatch'})")
        plans.append(p)
        at += n
    return plans


@register("SPLIT", "SPLIT_V", kernels=("strided_slice.c",), kernel_name="dk_strided_slice_s8",
          tests=("tests/test_kernels.py::test_split_matches_tflm_on_every_output",
                 "tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models"))
def emit(em, k, op):
    x = data_input(op)
    axis, sizes = pieces(k, op)
    plans = prepare(k, op)
    em.comment(k, op, f"axis {axis} into {len(sizes)} pieces of {sizes}: outputs "
                      + ", ".join(em.qdesc(y).split(" s=")[0] for y in op.outputs))
    for j, (y, p) in enumerate(zip(op.outputs, plans)):
        em.params(STRIDED_SLICE_PARAMS, f"L{k}_p{j}", p)
        em.call(f"dk_strided_slice_s8(&L{k}_p{j}, {em.ptr(x)}, {em.ptr(y)})")
