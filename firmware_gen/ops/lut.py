"""Unary int8 operators computed as a 256-entry table at generation time (dk_lut_s8):
LEAKY_RELU, RELU6, HARD_SWISH here; LOGISTIC, ELU and RSQRT fill theirs in their own units."""

from __future__ import annotations

from drsn_edge.errors import UserError
from firmware_gen import quant
from firmware_gen.ops.base import check_elementwise, layer_name, numel, register


def check_unary(k, op) -> None:
    """One per-tensor int8 input and an int8 output of its shape: the table is applied
    element by element, so anything else would read or write past a tensor."""
    x, y = op.inputs[0], op.outputs[0]
    where = f"op {k} {op.opcode} ({layer_name(y)})"
    check_elementwise(k, op)
    if x.type != "INT8" or y.type != "INT8" or len(x.scales) != 1 or len(y.scales) != 1:
        raise UserError(f"{where} takes {x.type} into {y.type}; the compiled runtime takes per-tensor int8 only")


def emit_table(em, k, op, table, note):
    x, y = op.inputs[0], op.outputs[0]
    em.comment(k, op, note)
    em.array("int8_t", f"L{k}_lut", table)
    em.call(f"dk_lut_s8(L{k}_lut, {em.ptr(x)}, {em.ptr(y)}, {numel(x.shape)})")


TESTS = ("tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models",
         "tests/test_kernels_fixedpoint.py::test_lut_reproduces_the_kernel_it_tabulates")


@register("LEAKY_RELU", kernels=("lut.c",), tests=TESTS, inplace=True)
def emit_leaky_relu(em, k, op):
    check_unary(k, op)
    x, y = op.inputs[0], op.outputs[0]
    alpha = float(op.options.get("alpha", 0.0))
    table = quant.leaky_relu_table(x.scale, x.zero_point, alpha, y.scale, y.zero_point)
    emit_table(em, k, op, table, f"alpha {alpha:.6g}: a 256-entry table filled as TFLM computes it")


@register("RELU6", kernels=("lut.c",), tests=TESTS, inplace=True)
def emit_relu6(em, k, op):
    check_unary(k, op)
    x = op.inputs[0]
    table = quant.relu6_table(x.scale, x.zero_point)
    emit_table(em, k, op, table, "clamp to [zp, q(6)] in the input's quantization (TFLM does not "
                                 "rescale), as a 256-entry table")


@register("HARD_SWISH", kernels=("lut.c",), tests=TESTS, inplace=True)
def emit_hard_swish(em, k, op):
    check_unary(k, op)
    x, y = op.inputs[0], op.outputs[0]
    table = quant.hard_swish_table(x.scale, x.zero_point, y.scale, y.zero_point)
    emit_table(em, k, op, table, "x * relu6(x + 3) / 6 in TFLM's int16 fixed point, as a 256-entry table")
