/*
 * softmax.c - SOFTMAX over the last axis (int8 in, int8 out with scale
 * 1/256 and zero point -128).
 *
 * For each row: differences to the row maximum are scaled by beta * scale
 * into Q5.26, exponentiated in fixed point and summed in Q12.19; the sum's
 * reciprocal is taken in fixed point and each exponential is multiplied by
 * it. Differences below diff_min contribute nothing and output -128. The
 * exponentials are recomputed in the second pass so no scratch is needed.
 */
#include "fixedpoint.h"

#define DK_SOFTMAX_DIFF_INTEGER_BITS 5
#define DK_SOFTMAX_ACCUM_INTEGER_BITS 12
#define DK_SOFTMAX_OUTPUT_BITS 8

/* Number of leading zero bits of a nonzero 32-bit value. */
static int32_t count_leading_zeros(uint32_t x)
{
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while ((x & 0x80000000u) == 0) {
        x <<= 1;
        ++n;
    }
    return n;
}

static int32_t scaled_exp(const dk_softmax_params *params, int32_t diff)
{
    /* diff * 2^left_shift * multiplier / 2^31 -> Q5.26 */
    const int32_t scaled = dk_srdhm(dk_wrap_shl(diff, params->input_left_shift),
                                    params->input_multiplier);
    return dk_fx_exp_on_negative_values(scaled, DK_SOFTMAX_DIFF_INTEGER_BITS);
}

void dk_softmax_s8(const dk_softmax_params *params, int32_t outer,
                   int32_t depth, const int8_t *input, int8_t *output)
{
    int32_t row, c;
    for (row = 0; row < outer; ++row) {
        const int8_t *x = input + row * depth;
        int8_t *y = output + row * depth;
        int32_t max_value = -128;
        int32_t sum_of_exps = 0;
        int32_t headroom, bits_over_unit, reciprocal, exponent;

        for (c = 0; c < depth; ++c) {
            if (x[c] > max_value) {
                max_value = x[c];
            }
        }
        for (c = 0; c < depth; ++c) {
            const int32_t diff = x[c] - max_value;
            if (diff >= params->diff_min) {
                /* Q0.31 -> Q12.19 */
                sum_of_exps = dk_wrap_add(
                    sum_of_exps,
                    dk_rdbpot(scaled_exp(params, diff),
                              DK_SOFTMAX_ACCUM_INTEGER_BITS));
            }
        }

        /* 1 / sum: normalise sum to [1, 2) as 1 + f, take 1 / (1 + f). */
        headroom = count_leading_zeros((uint32_t)sum_of_exps);
        bits_over_unit = DK_SOFTMAX_ACCUM_INTEGER_BITS - headroom;
        reciprocal = dk_fx_one_over_one_plus_x((int32_t)(
            ((uint32_t)sum_of_exps << headroom) - 0x80000000u));
        exponent = bits_over_unit + 31 - DK_SOFTMAX_OUTPUT_BITS;

        for (c = 0; c < depth; ++c) {
            const int32_t diff = x[c] - max_value;
            if (diff >= params->diff_min) {
                const int32_t unsaturated = dk_rdbpot(
                    dk_srdhm(reciprocal, scaled_exp(params, diff)), exponent);
                y[c] = (int8_t)dk_clamp(unsaturated - 128, -128, 127);
            } else {
                y[c] = -128;
            }
        }
    }
}
