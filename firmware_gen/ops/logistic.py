"""LOGISTIC and TANH (fixed-point, outputs at TFLM's fixed quantization)."""

from __future__ import annotations

from firmware_gen import quant
from firmware_gen.params import Struct, field
from firmware_gen.ops.base import numel, register

LOGISTIC_PARAMS = Struct("dk_logistic_params", [
    field("input_zero_point", "int32_t"),
    field("input_range_radius", "int32_t"),
    field("input_multiplier", "int32_t"),
    field("input_left_shift", "int32_t"),
], doc="LOGISTIC and TANH: the input rescaled to Q4.27 (Q3.28 for TANH) and the radius\n"
       "beyond which the output saturates.")


def prepare(op) -> quant.LogisticParams:
    """TFLM's Prepare of LOGISTIC / TANH: the input multiplier, left shift and radius."""
    x, y = op.inputs[0], op.outputs[0]
    fn = quant.prepare_tanh if op.opcode == "TANH" else quant.prepare_logistic
    return fn(x.scale, x.zero_point, y.scale, y.zero_point)


@register("LOGISTIC", kernels=("lut.c", "logistic.c"), inplace=True,
          tests=("tests/test_kernels.py::test_logistic_matches_tflm_including_saturated_inputs",
                 "tests/test_kernels_fixedpoint.py::test_logistic_table_is_the_kernel_for_every_input"))
def emit_logistic(em, k, op):
    """dk_logistic_s8 (logistic.c, which the table is tested against) costs about 400
    instructions per element (the fixed-point exp and reciprocal); its 256 possible results,
    computed here with the same steps (quant.logistic_table), make it one load per element
    for 256 bytes of flash."""
    from firmware_gen.ops.lut import check_unary, emit_table
    check_unary(k, op)
    emit_table(em, k, op, quant.logistic_table(prepare(op)),
               "output fixed at scale 1/256, zero point -128; a 256-entry table of dk_logistic_s8's results")


@register("TANH", kernels=("tanh.c", "fixedpoint.c"), inplace=True,
          tests=("tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models",))
def emit_tanh(em, k, op):
    from firmware_gen.ops.lut import check_unary
    check_unary(k, op)
    x, y = op.inputs[0], op.outputs[0]
    em.comment(k, op, "output fixed at scale 1/128, zero point 0")
    em.params(LOGISTIC_PARAMS, f"L{k}_p", prepare(op))
    em.call(f"dk_tanh_s8(&L{k}_p, {em.ptr(x)}, {em.ptr(y)}, {numel(x.shape)})")
