"""ELU (int8; Keras `layers.ELU()` / activation="elu", alpha 1) as a 256-entry table
(dk_lut_s8).

TFLM's int8 ELU is itself a table, filled in Prepare in single precision: for every int8 v,
x = s_in * (v - zp_in) (a float32 product), y = expf(x) - 1 below zero and x otherwise,
round(y * (1 / s_out)) (halves away from zero, float32) plus zp_out, clamped to int8. The
same steps here, with the C library's expf: the function TFLM's host runtime calls, whose
last bit differs from the correctly rounded exp for about one float32 input in 10^4, so a
table from another exp could differ from TFLM's where y / s_out lands next to a half.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import numpy as np

from drsn_edge.errors import UserError
from firmware_gen.quant import round_half_away
from firmware_gen.ops.base import register
from firmware_gen.ops.lut import check_unary, emit_table

INT32_MIN = -2**31


@functools.lru_cache(maxsize=1)
def _expf():
    name = ctypes.util.find_library("m")
    if name is None:
        raise UserError("ELU: the C math library (libm), whose expf TFLM's host runtime uses, "
                        "was not found; the table cannot be computed as TFLM computes it")
    fn = ctypes.CDLL(name).expf
    fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
    return fn


def table(input_scale, input_zero_point: int, output_scale, output_zero_point: int) -> list[int]:
    """TFLM's ELU lookup table, indexed by the input's byte ((uint8)v)."""
    f32 = np.float32
    expf = _expf()
    s_in, inv_out = f32(input_scale), f32(1.0) / f32(output_scale)
    out = []
    for byte in range(256):
        v = byte - 256 if byte >= 128 else byte
        x = s_in * f32(v - int(input_zero_point))
        y = f32(expf(float(x))) - f32(1.0) if x < 0 else x
        r = f32(y * inv_out)
        # TfLiteRound (roundf: halves away from zero) of a float32, then + zp_out in float32
        q = f32(round_half_away(float(r))) + f32(int(output_zero_point))
        # a float -> int32 cast out of range gives INT32_MIN on the x86 host (cvttss2si)
        n = int(q) if np.isfinite(q) and -2.0**31 <= q < 2.0**31 else INT32_MIN
        out.append(max(-128, min(127, n)))
    return out


@register("ELU", kernels=("lut.c",), inplace=True,
          tests=("tests/test_kernels_tables.py::test_elu_table_is_tflms_for_every_input",
                 "tests/test_kernels_tables.py::test_generated_c_with_elu_is_bit_exact_to_tflm"))
def emit(em, k, op):
    check_unary(k, op)
    x, y = op.inputs[0], op.outputs[0]
    emit_table(em, k, op, table(x.scale, x.zero_point, y.scale, y.zero_point),
               "expf(x) - 1 below zero, x above: TFLM's float32 table of 256 entries")
