"""PRELU (alpha broadcast against the input)."""

from __future__ import annotations

from firmware_gen import quant
from firmware_gen.params import REQUANT, Struct, field
from firmware_gen.ops.base import broadcast, register

PRELU_PARAMS = Struct("dk_prelu_params", [
    field("input_offset", "int32_t", comment="-input zero point"),
    field("alpha_offset", "int32_t", comment="-alpha zero point"),
    field("output_offset", "int32_t", comment="output zero point"),
    field("positive", REQUANT, comment="input_scale / output_scale"),
    field("negative", REQUANT, comment="input_scale * alpha_scale / output_scale"),
])


def prepare(op) -> dict:
    x, alpha, y = op.inputs[0], op.inputs[1], op.outputs[0]
    return {"input_offset": -x.zero_point, "alpha_offset": -alpha.zero_point, "output_offset": y.zero_point,
            "positive": quant.quantize_multiplier(float(x.scale) / float(y.scale)),
            "negative": quant.quantize_multiplier(float(x.scale) * float(alpha.scale) / float(y.scale))}


@register("PRELU", kernels=("prelu.c",),
          tests=("tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models",))
def emit(em, k, op):
    x, alpha, y = op.inputs[0], op.inputs[1], op.outputs[0]
    q = prepare(op)
    em.comment(k, op, "x >= 0: x * s_in/s_out; x < 0: x * alpha * s_in*s_alpha/s_out")
    p = f"L{k}"
    broadcast(em, p, x, alpha)
    em.params(PRELU_PARAMS, f"{p}_p", q)
    em.call(f"dk_prelu_s8(&{p}_p, &{p}_bc, {em.ptr(x)}, {em.ptr(alpha, 'alpha')}, {em.ptr(y)})")
