/*
 * quantize.c - QUANTIZE from float32 to int8: the model's float32 input.
 *
 * What TFLM's reference QUANTIZE computes for a float32 input and an int8 output, value by
 * value: the float32 quotient x / scale (one IEEE division, float by float), rounded to the
 * nearest integer with halves away from zero, converted to int32, plus the zero point,
 * clamped to [-128, 127].
 *
 * The conversion to int32 is undefined in C++ when the rounded quotient is outside the
 * int32 range or NaN; the TFLM host runtime this project checks against (x86-64) then gets
 * INT32_MIN (what CVTTSS2SI answers), and the zero point is added to it with wrap-around.
 * So +-inf, NaN and any |x / scale| >= 2^31 give -128 with a zero point >= 0 and 127 with a
 * negative one. The kernel does exactly that, on purpose, so that the board equals the
 * reference for every float32 bit pattern (an Arm build of TFLM, whose conversion
 * saturates, would differ there; finite inputs within 2^31 scales agree everywhere).
 *
 * No libm and no double: the rounding is done on the float itself (the truncation and the
 * difference to it are exact), so cores without an FPU (soft-float) give the same bytes.
 * Inputs are read with memcpy: the input may be any byte buffer (no alignment needed).
 */
#include <string.h>

#include "dk.h"

static int32_t quantize_one(float x, float scale, uint32_t zero_point)
{
    const float v = x / scale;
    int32_t r;
    /* Every float at or beyond 2^23 in magnitude is an integer, so the rounded value is out
     * of the int32 range exactly when v is; NaN fails both comparisons. */
    if (v >= -2147483648.0f && v < 2147483648.0f) {
        r = (int32_t)v;                         /* truncation toward zero, in range */
        const float frac = v - (float)r;        /* exact: |frac| < 1, v and r close */
        if (frac >= 0.5f) {
            r += 1;
        } else if (frac <= -0.5f) {
            r -= 1;
        }
    } else {
        r = INT32_MIN;
    }
    return (int32_t)((uint32_t)r + zero_point);  /* wraps as the reference does */
}

void dk_quantize_f32_s8(const dk_quantize_params *params, const int8_t *input,
                        int8_t *output, int32_t size)
{
    const float scale = params->scale;
    const uint32_t zero_point = (uint32_t)params->zero_point;
    int32_t i;
    for (i = 0; i < size; ++i) {
        float x;
        memcpy(&x, input + 4 * i, sizeof x);
        int32_t q = quantize_one(x, scale, zero_point);
        q = q < -128 ? -128 : (q > 127 ? 127 : q);
        output[i] = (int8_t)q;
    }
}
