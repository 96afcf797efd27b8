/*
 * tanh.c - TANH (int8 in, int8 out with scale 1/128 and zero point 0, fixed
 * by TFLM).
 *
 * Like LOGISTIC: inputs beyond +-input_range_radius saturate directly; the
 * others are rescaled to Q4.27 and go through the fixed-point tanh: for
 * n = -|a|, tanh(|a|) = (1 - e) / (1 + e) with e = exp(2n), where 2n is the same
 * raw value read with one more integer bit; the division is Newton-Raphson in
 * Q2.29, as for 1/(1 + x). The Q0.31 result is rounded to 1/128 steps.
 */
#include "fixedpoint.h"

#define DK_TANH_INPUT_INTEGER_BITS 4
/* Q0.31 -> units of 1/128: divide by 2^(31 - 7). */
#define DK_TANH_OUTPUT_SHIFT 24

/* (1 - a) / (1 + a) = 2 / (1 + a) - 1 for a in [0, 1] (Q0.31), result Q0.31. */
static int32_t dk_fx_one_minus_x_over_one_plus_x(int32_t a)
{
    return dk_sat_shl(dk_wrap_sub(dk_fx_two_over_one_plus_x(a), (int32_t)1 << 29), 2);
}

static int32_t dk_fx_tanh(int32_t a, int32_t integer_bits)
{
    int32_t n, t;
    if (a == 0) {
        return 0;
    }
    n = a < 0 ? a : dk_wrap_sub(0, a);
    t = dk_fx_one_minus_x_over_one_plus_x(
        dk_fx_exp_on_negative_values(n, integer_bits + 1));
    return a < 0 ? dk_wrap_sub(0, t) : t;
}

void dk_tanh_s8(const dk_logistic_params *params, const int8_t *input,
                int8_t *output, int32_t size)
{
    const int32_t radius = params->input_range_radius;
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t x = input[i] - params->input_zero_point;
        if (x <= -radius) {
            output[i] = -128;
        } else if (x >= radius) {
            output[i] = 127;
        } else {
            const int32_t x_q4 = dk_mbqm(x, params->input_multiplier,
                                         params->input_left_shift);
            const int32_t y_q0 = dk_fx_tanh(x_q4, DK_TANH_INPUT_INTEGER_BITS);
            output[i] = (int8_t)dk_clamp(dk_rdbpot(y_q0, DK_TANH_OUTPUT_SHIFT),
                                         -128, 127);
        }
    }
}
