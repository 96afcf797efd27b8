"""SQUARED_DIFFERENCE ((a - b)^2, tf.math.squared_difference: variances, distances; with
broadcasting).

TFLM's int8 arithmetic: both inputs, less their zero points and shifted left by 7 bits, are
rescaled to a common scale (each by its scale over twice the larger one, a multiplier below
one); the difference is squared in int32 and requantized by (twice the larger scale)^2 /
(2^14 * output scale), plus the output zero point, clamped to int8 (no fused activation).
"""

from __future__ import annotations

from drsn_edge.errors import UserError
from firmware_gen import quant
from firmware_gen.params import REQUANT, Struct, field
from firmware_gen.ops.base import broadcast, layer_name, register

LEFT_SHIFT = 7      # TFLM's for int8

SQUARED_DIFFERENCE_PARAMS = Struct("dk_squared_difference_params", [
    field("input1_offset", "int32_t", comment="-zero point"),
    field("input2_offset", "int32_t", comment="-zero point"),
    field("output_offset", "int32_t", comment="zero point"),
    field("left_shift", "int32_t", comment="7 for int8"),
    field("input1", REQUANT, comment="below one: to the common scale"),
    field("input2", REQUANT, comment="below one: to the common scale"),
    field("output", REQUANT, comment="the squared difference to the output scale"),
])


def prepare(k, op) -> dict:
    a, b = op.inputs[:2]
    y = op.outputs[0]
    if any(t.type != "INT8" or len(t.scales) != 1 for t in (a, b, y)):
        raise UserError(f"op {k} SQUARED_DIFFERENCE ({layer_name(y)}) takes {a.type} and {b.type} into "
                        f"{y.type}; the compiled runtime takes per-tensor int8 only")
    s1, s2, so = (float(quant._f32(t.scale)) for t in (a, b, y))
    twice_max = 2.0 * max(s1, s2)
    return {
        "input1_offset": -int(a.zero_point), "input2_offset": -int(b.zero_point),
        "output_offset": int(y.zero_point), "left_shift": LEFT_SHIFT,
        "input1": quant.quantize_multiplier_smaller_than_one(s1 / twice_max),
        "input2": quant.quantize_multiplier_smaller_than_one(s2 / twice_max),
        "output": quant.quantize_multiplier(twice_max * twice_max
                                            / float(quant._f32((1 << 2 * LEFT_SHIFT) * so))),
    }


@register("SQUARED_DIFFERENCE", kernels=("squared_difference.c",),
          tests=("tests/test_kernels.py::test_squared_difference_matches_tflm",
                 "tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models"))
def emit(em, k, op):
    a, b = op.inputs[:2]
    y = op.outputs[0]
    q = prepare(k, op)
    em.comment(k, op)
    p = f"L{k}"
    broadcast(em, p, a, b)
    em.params(SQUARED_DIFFERENCE_PARAMS, f"{p}_p", q)
    em.call(f"dk_squared_difference_s8(&{p}_p, &{p}_bc, {em.ptr(a, 'in1')}, {em.ptr(b, 'in2')}, {em.ptr(y)})")
