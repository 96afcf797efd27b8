"""SUM over contiguous axes (keep_dims either way), int8.

TFLM reduces int8 SUM the way it reduces MEAN, without the 1/n: the int32 sum of the
inputs, minus n times the input zero point, requantized by input_scale / output_scale
(double, QuantizeMultiplier) plus the output zero point, clamped. So the kernel is MEAN's
(dk_mean_s8) with the plain multiplier.
"""

from __future__ import annotations

import numpy as np

from firmware_gen import quant
from firmware_gen.ops.base import register
from firmware_gen.ops.mean import MEAN_PARAMS


def prepare(op) -> tuple[quant.MeanParams, list[int], tuple[int, int, int]]:
    x, axes_t = op.inputs
    y = op.outputs[0]
    axes = [int(a) for a in np.atleast_1d(axes_t.data)]
    plan = quant.mean_plan(x.shape, axes)
    return quant.prepare_sum(x.scale, x.zero_point, y.scale, y.zero_point, plan[1]), axes, plan


@register("SUM", kernels=("mean.c",), kernel_name="dk_mean_s8",
          tests=("tests/test_kernels.py::test_sum_matches_tflm",
                 "tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models"))
def emit(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    q, axes, (outer, reduce, inner) = prepare(op)
    em.comment(k, op, f"axes {axes}: [{outer}, {reduce}, {inner}] -> [{outer}, {inner}], "
                      f"sum of {reduce} requantized by s_in/s_out")
    em.params(MEAN_PARAMS, f"L{k}_p", q)
    em.call(f"dk_mean_s8(&L{k}_p, {outer}, {reduce}, {inner}, {em.ptr(x)}, {em.ptr(y)})")
