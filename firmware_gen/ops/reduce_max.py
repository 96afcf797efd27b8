"""REDUCE_MAX over contiguous axes (keep_dims either way), int8: Keras GlobalMaxPooling1D/2D.

TFLM takes the int8 maximum of the reduced elements, the input and output sharing their
quantization (the converter gives them one; anything else is refused here, as a
requantizing max is not what the kernel does). The axes, once size-1 axes are ignored,
must be contiguous: [outer, reduce, inner] -> [outer, inner], MEAN's plan.
"""

from __future__ import annotations

import numpy as np

from drsn_edge.errors import UserError
from firmware_gen import quant
from firmware_gen.ops.base import layer_name, register


def prepare(k, op) -> tuple[list[int], tuple[int, int, int]]:
    x, axes_t = op.inputs[:2]
    y = op.outputs[0]
    where = f"op {k} REDUCE_MAX ({layer_name(y)})"
    if axes_t is None or axes_t.data is None:
        raise UserError(f"{where} has run-time axes; the compiled runtime reduces constant axes")
    if x.type != "INT8" or y.type != "INT8":
        raise UserError(f"{where} is {x.type} -> {y.type}; the compiled runtime reduces int8 only")
    if float(x.scale) != float(y.scale) or x.zero_point != y.zero_point:
        raise UserError(f"{where}: input and output quantization differ; the compiled runtime takes "
                        f"the maximum without requantizing")
    axes = [int(a) for a in np.atleast_1d(axes_t.data)]
    try:
        plan = quant.mean_plan(x.shape, axes)
    except quant.QuantError as exc:
        raise UserError(f"{where}: {str(exc).replace('MEAN', 'REDUCE_MAX')}; the compiled runtime "
                        f"reduces contiguous axes") from None
    return axes, plan


@register("REDUCE_MAX", kernels=("reduce_max.c",), kernel_name="dk_reduce_max_s8",
          tests=("tests/test_kernels.py::test_reduce_max_matches_tflm",))
def emit(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    axes, (outer, reduce, inner) = prepare(k, op)
    em.comment(k, op, f"axes {axes}: [{outer}, {reduce}, {inner}] -> [{outer}, {inner}], the largest of "
                      f"{reduce} (shared quantization)")
    em.call(f"dk_reduce_max_s8({outer}, {reduce}, {inner}, {em.ptr(x)}, {em.ptr(y)})")
