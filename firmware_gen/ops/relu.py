"""RELU as a standalone operator (rescale, then clamp at the output zero point)."""

from __future__ import annotations

from firmware_gen import quant
from firmware_gen.params import ACTIVATION, REQUANT, Struct, field
from firmware_gen.ops.base import numel, register
from firmware_gen.ops.lut import check_unary

RELU_PARAMS = Struct("dk_relu_params", [
    field("input_zero_point", "int32_t"),
    field("output_zero_point", "int32_t"),
    field("output", REQUANT),
    field("activation", ACTIVATION),
])


def prepare(op) -> quant.ReluParams:
    x, y = op.inputs[0], op.outputs[0]
    return quant.prepare_relu(x.scale, x.zero_point, y.scale, y.zero_point)


@register("RELU", kernels=("relu.c",), inplace=True,
          tests=("tests/test_kernels.py::test_standalone_relu_matches_tflm",))
def emit(em, k, op):
    check_unary(k, op)
    x, y = op.inputs[0], op.outputs[0]
    em.comment(k, op)
    em.params(RELU_PARAMS, f"L{k}_p", prepare(op))
    em.call(f"dk_relu_s8(&L{k}_p, {em.ptr(x)}, {em.ptr(y)}, {numel(x.shape)})")
