"""LOG_SOFTMAX over the last axis (output fixed at scale 16/256, zero point 127, as TFLM).

Prepare as TFLM's: the input scale (beta 1) into Q5.26 as for SOFTMAX (multiplier > 1 and a
left shift), the reverse of that scaling as a multiplier below one (for the threshold under
which an output is -128), and the most negative difference that still contributes.
"""

from __future__ import annotations

from drsn_edge.errors import UserError
from firmware_gen import quant
from firmware_gen.params import Struct, field
from firmware_gen.ops.base import layer_name, numel, register

LOG_SOFTMAX_PARAMS = Struct("dk_log_softmax_params", [
    field("input_multiplier", "int32_t", comment="input differences into Q5.26"),
    field("input_left_shift", "int32_t"),
    field("reverse_multiplier", "int32_t", comment="Q5.26 back to input units (below one)"),
    field("reverse_shift", "int32_t", comment="its shift (<= 0)"),
    field("diff_min", "int32_t", comment="differences below this contribute no exp"),
])

OUTPUT_SCALE = 16.0 / 256.0
OUTPUT_ZERO_POINT = 127


def prepare(k, op) -> dict:
    x, y = op.inputs[0], op.outputs[0]
    if abs(float(y.scale) - OUTPUT_SCALE) > 0 or y.zero_point != OUTPUT_ZERO_POINT:
        raise UserError(f"op {k} LOG_SOFTMAX ({layer_name(y)}) outputs at scale {float(y.scale):.6g}, zero "
                        f"point {y.zero_point}; TFLM requires 16/256 and 127")
    return quant.prepare_log_softmax(x.scale)


@register("LOG_SOFTMAX", kernels=("log_softmax.c", "fixedpoint.c"),
          tests=("tests/test_kernels.py::test_log_softmax_matches_tflm",))
def emit(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    q = prepare(k, op)
    depth = x.shape[-1]
    em.comment(k, op, "output fixed at scale 16/256, zero point 127")
    em.params(LOG_SOFTMAX_PARAMS, f"L{k}_p", q)
    em.call(f"dk_log_softmax_s8(&L{k}_p, {numel(x.shape) // depth}, {depth}, {em.ptr(x)}, {em.ptr(y)})")
