"""MEAN over contiguous axes (keep_dims either way)."""

from __future__ import annotations

import numpy as np

from firmware_gen import quant
from firmware_gen.params import REQUANT, Struct, field
from firmware_gen.ops.base import register

MEAN_PARAMS = Struct("dk_mean_params", [
    field("input_zero_point", "int32_t"),
    field("output_zero_point", "int32_t"),
    field("num_elements", "int32_t", comment="elements averaged into each output"),
    field("output", REQUANT, comment="already includes the 1/num_elements factor"),
])


def prepare(op) -> tuple[quant.MeanParams, list[int], tuple[int, int, int]]:
    """The requantization (1/n folded in as TFLM does), the axes and the [outer, reduce,
    inner] view of the input."""
    x, axes_t = op.inputs
    y = op.outputs[0]
    axes = [int(a) for a in np.atleast_1d(axes_t.data)]
    plan = quant.mean_plan(x.shape, axes)
    return quant.prepare_mean(x.scale, x.zero_point, y.scale, y.zero_point, plan[1]), axes, plan


@register("MEAN", kernels=("mean.c",),
          tests=("tests/test_kernels.py::test_mean_over_time_axis_matches_tflm",))
def emit(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    q, axes, (outer, reduce, inner) = prepare(op)
    em.comment(k, op, f"axes {axes}: [{outer}, {reduce}, {inner}] -> [{outer}, {inner}]")
    em.params(MEAN_PARAMS, f"L{k}_p", q)
    em.call(f"dk_mean_s8(&L{k}_p, {outer}, {reduce}, {inner}, {em.ptr(x)}, {em.ptr(y)})")
