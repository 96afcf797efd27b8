"""UNPACK (tf.unstack; the first op of every unrolled Keras RNN: GRU, LSTM, SimpleRNN with
unroll=True): `num` outputs, output i being the input at index i of `axis`, that axis removed.

TFLM copies the bytes without requantizing (it checks only the types), so this does too.
Each output is a window of the input with the axis shrunk, i.e. STRIDED_SLICE's plan and one
dk_strided_slice_s8 call, as SPLIT's outputs are; the memory planner places every output.
"""

from __future__ import annotations

from drsn_edge.errors import UserError
from firmware_gen.ops.base import checked_axis, layer_name, register
from firmware_gen.ops.strided_slice import STRIDED_SLICE_PARAMS, checked_plan


def prepare(k, op) -> tuple[int, list[dict]]:
    """(axis, one STRIDED_SLICE plan per output)."""
    x = op.inputs[0]
    where = f"op {k} UNPACK ({layer_name(op.outputs[0])})"
    rank = len(x.shape)
    axis = checked_axis(where, int(op.options.get("axis", 0)), rank, "input")
    if len(op.outputs) != int(x.shape[axis]):
        raise UserError(f"{where}: {len(op.outputs)} outputs for an axis of size {int(x.shape[axis])}")
    if x.type != "INT8" or any(y.type != "INT8" for y in op.outputs):
        raise UserError(f"{where} unpacks {x.type} into {op.outputs[0].type}; the compiled runtime "
                        f"unpacks int8 only")
    plans = []
    for i, y in enumerate(op.outputs):
        begin = [i if d == axis else 0 for d in range(rank)]
        end = [i + 1 if d == axis else int(x.shape[d]) for d in range(rank)]
        plans.append(checked_plan(where, x, y, begin, end, [1] * rank, 0, 0, 1 << axis))
    return axis, plans


@register("UNPACK", kernels=("strided_slice.c",), kernel_name="dk_strided_slice_s8",
          tests=("tests/test_kernels.py::test_unpack_matches_tflm_on_every_output",
                 "tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models"))
def emit(em, k, op):
    x = op.inputs[0]
    axis, plans = prepare(k, op)
    em.comment(k, op, f"axis {axis} into {len(plans)} outputs of {list(op.outputs[0].shape)}, copied "
                      f"without requantizing")
    for j, (y, p) in enumerate(zip(op.outputs, plans)):
        em.params(STRIDED_SLICE_PARAMS, f"L{k}_p{j}", p)
        em.call(f"dk_strided_slice_s8(&L{k}_p{j}, {em.ptr(x)}, {em.ptr(y)})")
