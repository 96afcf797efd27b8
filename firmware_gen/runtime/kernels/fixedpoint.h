/*
 * fixedpoint.h - inline fixed-point primitives shared by the dk kernels.
 *
 * These are the integer operations TFLM's reference kernels are built from
 * (in its default "double rounding" configuration). They are written here
 * from their arithmetic definitions:
 *
 *  - dk_srdhm(a, b): round(a * b / 2^31) with ties rounded up (toward
 *    +infinity), saturating the single overflowing case a = b = INT32_MIN.
 *  - dk_rdbpot(x, e): x / 2^e rounded to nearest, ties away from zero.
 *  - dk_mbqm(x, m, s): x * m * 2^(s - 31); a left shift first when s > 0,
 *    then dk_srdhm, then a rounding right shift when s < 0.
 *
 * Integer overflow is avoided by doing wrapping arithmetic on uint32_t
 * where the reference relies on two's-complement wrap-around.
 */
#ifndef DK_FIXEDPOINT_H
#define DK_FIXEDPOINT_H

#include <stdint.h>

#include "dk.h"

#define DK_INT32_MIN ((int32_t)(-2147483647 - 1))
#define DK_INT32_MAX ((int32_t)2147483647)

/* Two's-complement wrapping helpers (defined behaviour in C99). */
static inline int32_t dk_wrap_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int32_t dk_wrap_sub(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

static inline int32_t dk_wrap_shl(int32_t x, int32_t n)
{
    return (int32_t)((uint32_t)x << n);
}

static inline int32_t dk_srdhm(int32_t a, int32_t b)
{
    if (a == DK_INT32_MIN && b == DK_INT32_MIN) {
        return DK_INT32_MAX;
    }
    {
        const int64_t product = (int64_t)a * (int64_t)b;
        const int64_t nudge = product >= 0 ? ((int64_t)1 << 30)
                                           : (int64_t)(1 - (1 << 30));
        /* C99 division truncates toward zero, as the definition needs. */
        return (int32_t)((product + nudge) / ((int64_t)1 << 31));
    }
}

static inline int32_t dk_rdbpot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static inline int32_t dk_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return dk_rdbpot(dk_srdhm(dk_wrap_shl(x, left), multiplier), right);
}

/* Multiply by 2^exponent (exponent >= 0), saturating to the int32 range. */
static inline int32_t dk_sat_shl(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (exponent == 0) {
        return x;
    }
    if (x > threshold) {
        return DK_INT32_MAX;
    }
    if (x < -threshold) {
        return DK_INT32_MIN;
    }
    return dk_wrap_shl(x, exponent);
}

static inline int32_t dk_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* One output of a reference convolution (CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV) from its
 * accumulator: + bias, TFLM's requantization of channel oc, + zero point, clamp. */
static inline int8_t dk_conv_out(const dk_conv_params *params, const dk_channel_requant *quant,
                                 const int32_t *bias, int32_t oc, int32_t acc)
{
    const int32_t q = quant->per_channel ? oc : 0;
    if (bias) {
        acc = dk_wrap_add(acc, bias[oc]);
    }
    return (int8_t)dk_clamp(dk_mbqm(acc, quant->multiplier[q], quant->shift[q]) + params->output_offset,
                            params->activation.min, params->activation.max);
}

#endif /* DK_FIXEDPOINT_H */
