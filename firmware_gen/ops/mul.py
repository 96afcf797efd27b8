"""MUL (broadcasting, fused activation)."""

from __future__ import annotations

from firmware_gen import quant
from firmware_gen.params import ACTIVATION, REQUANT, Struct, field
from firmware_gen.ops.base import act_name, broadcast, register

MUL_PARAMS = Struct("dk_mul_params", [
    field("input1_offset", "int32_t", comment="-zero point"),
    field("input2_offset", "int32_t", comment="-zero point"),
    field("output_offset", "int32_t", comment="zero point"),
    field("output", REQUANT),
    field("activation", ACTIVATION),
])


def prepare(op) -> quant.MulParams:
    a, b = op.inputs[:2]
    y = op.outputs[0]
    return quant.prepare_mul(a.scale, a.zero_point, b.scale, b.zero_point, y.scale, y.zero_point, act_name(op))


@register("MUL", kernels=("mul.c",), tests=("tests/test_kernels.py::test_broadcasting_binary_op_matches_tflm",),
          inplace=True)
def emit(em, k, op):
    a, b = op.inputs
    y = op.outputs[0]
    q = prepare(op)
    em.comment(k, op, f"act {act_name(op)}")
    p = f"L{k}"
    broadcast(em, p, a, b)
    em.params(MUL_PARAMS, f"{p}_p", q)
    em.call(f"dk_mul_s8(&{p}_p, &{p}_bc, {em.ptr(a)}, {em.ptr(b)}, {em.ptr(y)})")
