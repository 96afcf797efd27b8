"""ABS (rescaled only when the input and output scales differ)."""

from __future__ import annotations

from firmware_gen import quant
from firmware_gen.params import REQUANT, Struct, field
from firmware_gen.ops.base import numel, register

ABS_PARAMS = Struct("dk_abs_params", [
    field("input_zero_point", "int32_t"),
    field("output_zero_point", "int32_t"),
    field("needs_rescale", "int32_t", comment="0 when input and output scales are equal"),
    field("output", REQUANT),
])


def prepare(op) -> quant.AbsParams:
    x, y = op.inputs[0], op.outputs[0]
    return quant.prepare_abs(x.scale, x.zero_point, y.scale, y.zero_point)


@register("ABS", kernels=("abs.c",), inplace=True,
          tests=("tests/test_kernels.py::test_abs_matches_tflm_with_and_without_rescaling",
                 "tests/test_kernels.py::test_parameter_derivation_is_visible_and_matches_tflm"))
def emit(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    em.comment(k, op)
    em.params(ABS_PARAMS, f"L{k}_p", prepare(op))
    em.call(f"dk_abs_s8(&L{k}_p, {em.ptr(x)}, {em.ptr(y)}, {numel(x.shape)})")
