"""ADD and SUB (broadcasting, fused activation); same-shape activations take the short
exact dk_add_same_s8."""

from __future__ import annotations

from firmware_gen import quant
from firmware_gen.params import ACTIVATION, REQUANT, Struct, field
from firmware_gen.ops.base import act_name, broadcast, numel, register

ADD_PARAMS = Struct("dk_add_params", [
    field("input1_offset", "int32_t", comment="-zero point"),
    field("input2_offset", "int32_t", comment="-zero point"),
    field("output_offset", "int32_t", comment="zero point"),
    field("left_shift", "int32_t", comment="20 for int8"),
    field("input1", REQUANT),
    field("input2", REQUANT),
    field("output", REQUANT),
    field("activation", ACTIVATION),
], doc="ADD and SUB share one parameter set (TFLM's general int8 path: both inputs\n"
       "are rescaled to a common scale after a left shift of 20 bits).")

# An unused dk_add_params (e.g. the residual ADD of a soft threshold without one).
UNUSED = quant.AddParams(0, 0, 0, 0, quant.Requant(0, 0), quant.Requant(0, 0), quant.Requant(0, 0),
                         quant.Activation(-128, 127))


def prepare(op) -> quant.AddParams:
    """TFLM's Prepare of ADD / SUB (the same parameters; SUB negates in the kernel)."""
    a, b = op.inputs[:2]
    y = op.outputs[0]
    return quant.prepare_add(a.scale, a.zero_point, b.scale, b.zero_point, y.scale, y.zero_point, act_name(op))


def _emit(em, k, op, fn):
    a, b = op.inputs
    y = op.outputs[0]
    q = prepare(op)
    em.comment(k, op, f"act {act_name(op)}")
    p = f"L{k}"
    if tuple(a.shape) == tuple(b.shape) and a.data is None and b.data is None:
        em.params(ADD_PARAMS, f"{p}_p", q)
        em.call(f"dk_add_same_s8_inline(&{p}_p, {numel(a.shape)}, {em.ptr(a)}, {em.ptr(b)}, {em.ptr(y)}, "
                f"{int(fn == 'dk_sub_s8')})")
        em.kernel_name("dk_add_same_s8")
        return
    broadcast(em, p, a, b)
    em.params(ADD_PARAMS, f"{p}_p", q)
    em.call(f"{fn}(&{p}_p, &{p}_bc, {em.ptr(a)}, {em.ptr(b)}, {em.ptr(y)})")


TESTS = ("tests/test_kernels.py::test_broadcasting_binary_op_matches_tflm",
         "tests/test_kernels_fast.py::test_same_shape_add_and_sub_equal_the_reference_kernels")


@register("ADD", kernels=("add.c", "add_fast.c"), tests=TESTS, inplace=True)
def emit_add(em, k, op):
    _emit(em, k, op, "dk_add_s8")


@register("SUB", kernels=("sub.c", "add_fast.c"), tests=TESTS, inplace=True)
def emit_sub(em, k, op):
    _emit(em, k, op, "dk_sub_s8")
