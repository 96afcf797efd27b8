"""QUANTIZE: float32 -> int8 as the model's first operator (a float32 input), and between
8-bit integer types (ops/requantize.py): int8 -> int8 (a requantization), uint8 -> int8 reading
the model's uint8 input, int8 -> uint8 writing its uint8 output.

A model converted with full-integer quantization but the converter's default float32
interface starts with a QUANTIZE reading the float32 input. TFLM's reference kernel computes
each int8 value from the float32 quotient x / scale, rounded half away from zero, plus the
zero point, clamped; the kernel (quantize.c) does the same, so the board sees the int8
tensor TFLM sees. Anywhere but reading the model's input, a float32 QUANTIZE would be a
float island: refused here and by the audit.
"""

from __future__ import annotations

from drsn_edge.errors import UserError
from firmware_gen.params import Struct, field
from firmware_gen.ops import requantize
from firmware_gen.ops.base import check_elementwise, layer_name, numel, register

QUANTIZE_PARAMS = Struct("dk_quantize_params", [
    field("scale", "float", comment="the output's scale (float32; x / scale in float32)"),
    field("zero_point", "int32_t", comment="the output's zero point"),
])


def prepare(k, op) -> dict:
    x, y = op.inputs[0], op.outputs[0]
    if x.type != "FLOAT32" or y.type != "INT8":
        raise UserError(f"op {k} QUANTIZE ({layer_name(y)}) from {x.type} to {y.type}: the compiled "
                        f"runtime quantizes float32 to int8 only")
    if len(y.scales) != 1:
        raise UserError(f"op {k} QUANTIZE ({layer_name(y)}) has a per-channel quantized output; "
                        f"the compiled runtime quantizes per-tensor int8 only")
    return {"scale": float(y.scale), "zero_point": int(y.zero_point)}


@register("QUANTIZE", kernels=("requantize.c", "quantize.c"), inplace=True, kernel_name="dk_quantize_s8",
          tests=("tests/test_kernels.py::test_int8_requantize_matches_tflm",
                 "tests/test_byom.py::test_the_uint8_requantize_kernels_are_bit_exact_to_tflm",
                 "tests/test_byom.py::test_the_float_input_quantize_kernel_is_bit_exact_to_tflm"))
def emit(em, k, op):
    check_elementwise(k, op)
    x, y = op.inputs[0], op.outputs[0]
    if x.type != "FLOAT32":
        return requantize.emit(em, k, op)
    if x.index != em.input.index:
        raise UserError(f"op {k} QUANTIZE ({layer_name(y)}) from float32 does not read the model's input; "
                        f"the compiled runtime quantizes only the model's float32 input")
    q = prepare(k, op)
    em.kernel_name("dk_quantize_f32_s8")
    em.comment(k, op, f"float32 input -> int8 = clamp(round(x / scale) + zero_point) (halves away from "
                      f"zero), {numel(x.shape)} values")
    em.params(QUANTIZE_PARAMS, f"L{k}_p", q)
    em.call(f"dk_quantize_f32_s8(&L{k}_p, {em.ptr(x)}, {em.ptr(y)}, {numel(x.shape)})")
