"""SOFTMAX over the last axis (output at scale 1/256, zero point -128)."""

from __future__ import annotations

from firmware_gen import quant
from firmware_gen.params import Struct, field
from firmware_gen.ops.base import numel, register

SOFTMAX_PARAMS = Struct("dk_softmax_params", [
    field("input_multiplier", "int32_t"),
    field("input_left_shift", "int32_t"),
    field("diff_min", "int32_t"),
])


def prepare(op) -> quant.SoftmaxParams:
    x, y = op.inputs[0], op.outputs[0]
    return quant.prepare_softmax(x.scale, op.options.get("beta", 1.0), y.scale, y.zero_point)


@register("SOFTMAX", kernels=("softmax.c", "fixedpoint.c"),
          tests=("tests/test_kernels.py::test_softmax_matches_tflm",))
def emit(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    q = prepare(op)
    depth = x.shape[-1]
    em.comment(k, op, "output fixed at scale 1/256, zero point -128")
    em.params(SOFTMAX_PARAMS, f"L{k}_p", q)
    em.call(f"dk_softmax_s8(&L{k}_p, {numel(x.shape) // depth}, {depth}, {em.ptr(x)}, {em.ptr(y)})")
