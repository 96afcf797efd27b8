"""RSQRT (int8; tf.math.rsqrt, as in LayerNormalization-style graphs) as a 256-entry table
(dk_lut_s8).

TFLM's int8 kernel works on d = v - zp_in per element, in integers: d = 0 gives 127; else
the inverse square root of d as a Q0.31 multiplier and a shift (the fixed-point
Newton-Raphson of L2_NORMALIZATION, runtime/kernels/l2_normalization.c), applied to 1
with 20 extra bits (1 / sqrt(d) * 2^20), then rescaled by 1 / (sqrt(s_in) * s_out)
(Prepare: a float32 square root and product, the reciprocal in double) and 2^-20, plus
zp_out, clamped to int8. Each step has one int8 input, so the 256 results are computed
here with the same integer steps.

An input below the zero point (a negative real value) makes TFLM stop the whole inference
with an error; the table holds 127 there, the value at the zero point.
"""

from __future__ import annotations

import numpy as np

from drsn_edge.errors import UserError
from firmware_gen import quant
from firmware_gen.ops.base import layer_name, register
from firmware_gen.ops.lut import check_unary, emit_table
from firmware_gen.quant import _rdbpot, _sat_shl32, _srdhm32, _w32

EXTRA_BITS = 20          # TFLM keeps 1/sqrt(d) as an integer times 2^20
THREE_HALVES_Q3 = (1 << 28) + (1 << 27)
HALF_SQRT2_Q31 = 1518500250


def inv_sqrt(d: int) -> tuple[int, int]:
    """(multiplier, right shift) with 1/sqrt(d) ~ multiplier * 2^-(31 + shift): TFLM's
    GetInvSqrtQuantizedMultiplierExp before it negates the shift (d in 0 .. 2^31)."""
    if d <= 1:
        return quant.INT32_MAX, 0
    shift = 11
    while d >= 1 << 29:
        d //= 4
        shift += 1
    pairs = (32 - d.bit_length() - 1) // 2 - 1      # (leading zeros - 1) / 2, less one
    shift -= pairs
    d <<= 2 * pairs                                 # now in [2^27, 2^29): Q3.28
    half = _rdbpot(d >> 1, 1)
    x = 1 << 28                                      # 1.0 in Q3.28
    for _ in range(5):                               # x <- x * (3/2 - d/2 * x^2)
        x3 = _sat_shl32(_srdhm32(_srdhm32(x, x), x), 6)
        x = _sat_shl32(_w32(_srdhm32(THREE_HALVES_Q3, x) - _srdhm32(half, x3)), 3)
    x = _srdhm32(x, HALF_SQRT2_Q31)
    if shift < 0:
        x, shift = _w32(x << -shift), 0
    return x, shift


def output_multiplier(input_scale, output_scale) -> quant.Requant:
    """Prepare's 1 / (sqrtf(s_in) * s_out): float32 root and product, double reciprocal."""
    f32 = np.float32
    return quant.quantize_multiplier(1.0 / float(np.sqrt(f32(input_scale)) * f32(output_scale)))


def table(input_scale, input_zero_point: int, output_scale, output_zero_point: int) -> list[int]:
    """TFLM's RSQRT for every input byte ((uint8)v indexes the table)."""
    q = output_multiplier(input_scale, output_scale)
    if not -31 <= q.shift - EXTRA_BITS <= 30:
        raise quant.QuantError(f"RSQRT output multiplier {q.multiplier} * 2^{q.shift - 31}: TFLM's "
                               f"rescale by it less {EXTRA_BITS} bits is outside its shift range")
    out = []
    for byte in range(256):
        d = (byte - 256 if byte >= 128 else byte) - int(input_zero_point)
        if d <= 0:
            out.append(quant.INT8_MAX)
            continue
        m, s = inv_sqrt(d)
        fixed = quant.multiply_by_quantized_multiplier(1, m, EXTRA_BITS - s)
        y = quant.multiply_by_quantized_multiplier(fixed, q.multiplier, q.shift - EXTRA_BITS)
        out.append(max(quant.INT8_MIN, min(quant.INT8_MAX, y + int(output_zero_point))))
    return out


@register("RSQRT", kernels=("lut.c",), inplace=True,
          tests=("tests/test_kernels_tables.py::test_rsqrt_table_is_tflms_for_every_input",
                 "tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models"))
def emit(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    where = f"op {k} RSQRT ({layer_name(y)})"
    check_unary(k, op)
    try:
        t = table(x.scale, x.zero_point, y.scale, y.zero_point)
    except quant.QuantError as e:
        raise UserError(f"{where}: {e}") from None
    emit_table(em, k, op, t, "1/sqrt(x) in TFLM's fixed point (Newton-Raphson, 2^20 units), as a "
                             "256-entry table; inputs below the zero point (TFLM stops on them) give 127")
