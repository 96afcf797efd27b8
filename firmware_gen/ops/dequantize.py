"""DEQUANTIZE int8 -> float32, writing a model's output (a float32 output).

TFLM's reference kernel computes each output as float(scale * (q - zero_point)) with the
scale widened to double and the difference an int32: one double product rounded once to
float. The kernel does the same, so the output bytes equal TFLM's.
"""

from __future__ import annotations

from drsn_edge.errors import UserError
from firmware_gen.params import Struct, field
from firmware_gen.ops.base import check_elementwise, layer_name, numel, register

DEQUANTIZE_PARAMS = Struct("dk_dequantize_params", [
    field("scale", "float", comment="the input's scale (float32, widened to double per element)"),
    field("zero_point", "int32_t", comment="the input's zero point"),
])


def prepare(k, op) -> dict:
    x, y = op.inputs[0], op.outputs[0]
    if x.type != "INT8" or y.type != "FLOAT32":
        raise UserError(f"op {k} DEQUANTIZE ({layer_name(y)}) from {x.type} to {y.type}: the compiled "
                        f"runtime dequantizes int8 to float32 only")
    if len(x.scales) != 1:
        raise UserError(f"op {k} DEQUANTIZE ({layer_name(y)}) has a per-channel quantized input; "
                        f"the compiled runtime dequantizes per-tensor int8 only")
    return {"scale": float(x.scale), "zero_point": int(x.zero_point)}


@register("DEQUANTIZE", kernels=("dequantize.c",), kernel_name="dk_dequantize_s8_f32",
          tests=("tests/test_byom.py::test_a_float_output_is_bit_exact_to_tflm_on_the_host",))
def emit(em, k, op):
    check_elementwise(k, op)
    x, y = op.inputs[0], op.outputs[0]
    if y.index not in em.output_indices:
        raise UserError(f"op {k} DEQUANTIZE ({layer_name(y)}) is inside the graph; the compiled runtime "
                        f"dequantizes only the model's output")
    q = prepare(k, op)
    em.comment(k, op, f"float32 output = (float)((double)scale * (q - zero_point)), {numel(x.shape)} values")
    em.params(DEQUANTIZE_PARAMS, f"L{k}_p", q)
    em.call(f"dk_dequantize_s8_f32(&L{k}_p, {em.ptr(x)}, {em.ptr(y)}, {numel(x.shape)})")
