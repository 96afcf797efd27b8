/*
 * log_softmax.c - LOG_SOFTMAX (int8) over the last axis, as TFLM computes it.
 *
 * Per row: the differences to the row's maximum, scaled into Q5.26, exponentiated
 * (dk_fx_exp_on_negative_values) and summed in Q12.19; the log of that sum in Q5.26
 * (dk_log_q5_of_q12 below: the same fixed-point steps as TFLM's log for x >= 1); each
 * output is (difference - log sum) brought from Q5.26 to Q4 with the 127 offset, or -128
 * when the difference is below the threshold the reverse scaling gives.
 */
#include "fixedpoint.h"

#define DK_Q0_LOG_2 1488522236          /* log(2) in Q0.31 */
#define DK_Q0_SQRT_SQRT_HALF 1805811301 /* 0.5^(1/4) */
#define DK_Q0_SQRT_HALF 1518500250      /* 0.5^(1/2) */
#define DK_Q0_QUARTER 536870912         /* 1/4 */
#define DK_Q0_ALPHA_N 117049297         /* 11/240 * 2^(1/4) */
#define DK_Q0_ALPHA_D 127690142         /* 1/20 * 2^(1/4) */
#define DK_Q0_ALPHA_I 1057819769        /* 2 / 2^(1/4) - 2^(1/4) */
#define DK_Q0_ALPHA_F 638450708         /* 1/4 * 2^(1/4) */

static int32_t dk_clz32(uint32_t x)
{
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* x * 2^exponent: a saturating left shift, or a rounding right shift. */
static int32_t dk_mul_pot(int32_t x, int32_t exponent)
{
    return exponent >= 0 ? dk_sat_shl(x, exponent) : dk_rdbpot(x, -exponent);
}

static int32_t dk_sat_add64(int32_t a, int32_t b)
{
    const int64_t s = (int64_t)a + (int64_t)b;
    return s > DK_INT32_MAX ? DK_INT32_MAX : (s < DK_INT32_MIN ? DK_INT32_MIN : (int32_t)s);
}

/* (a + b) / 2 rounded half away from zero. */
static int32_t dk_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t s = (int64_t)a + (int64_t)b;
    return (int32_t)((s + (s >= 0 ? 1 : -1)) / 2);
}

/* log(x) for x >= 1 given in Q12.19, result in Q5.26: a power of two from the headroom
 * (two candidates, a quarter apart, through sqrt(1/2)), and a rational approximation of
 * the log of the remaining mantissa around 2^(-1/4); accumulated in Q6.25. */
static int32_t dk_log_q5_of_q12(int32_t x)
{
    enum { IN_BITS = 12, ACC_BITS = 6, OUT_BITS = 5 };
    const int32_t quarter_acc = dk_rdbpot(DK_Q0_QUARTER, ACC_BITS);
    const int32_t a_headroom_plus_1 = dk_clz32((uint32_t)x);
    const int32_t r_a = dk_mul_pot(dk_srdhm(dk_mul_pot(x, a_headroom_plus_1 - 1), DK_Q0_SQRT_HALF), 1);
    const int32_t a_pow2 = dk_sat_add64(dk_mul_pot(IN_BITS - a_headroom_plus_1, 31 - ACC_BITS), quarter_acc);
    const int32_t z_b = dk_srdhm(x, DK_Q0_SQRT_HALF);
    const int32_t b_headroom = dk_clz32((uint32_t)z_b) - 1;
    const int32_t r_b = dk_mul_pot(x, b_headroom);
    const int32_t b_pow2 = dk_sat_add64(dk_mul_pot(IN_BITS - b_headroom, 31 - ACC_BITS), -quarter_acc);
    const int32_t r = r_a < r_b ? r_a : r_b;
    const int32_t pow2 = a_pow2 > b_pow2 ? a_pow2 : b_pow2;
    const int32_t p = dk_rounding_half_sum(r, DK_Q0_SQRT_SQRT_HALF);
    int32_t q = dk_wrap_sub(r, DK_Q0_SQRT_SQRT_HALF);
    int32_t sq, num, denom, recip, sum;
    q = dk_wrap_add(q, q);
    sq = dk_srdhm(q, q);
    num = dk_wrap_add(dk_srdhm(q, r), dk_srdhm(dk_srdhm(q, sq), DK_Q0_ALPHA_N));
    denom = dk_wrap_add(dk_srdhm(p, dk_wrap_add(dk_wrap_add(DK_Q0_ALPHA_I, q), dk_srdhm(DK_Q0_ALPHA_D, sq))),
                        dk_srdhm(DK_Q0_ALPHA_F, q));
    recip = dk_fx_one_over_one_plus_x(denom);
    sum = dk_wrap_add(dk_srdhm(pow2, DK_Q0_LOG_2), dk_srdhm(dk_rdbpot(num, ACC_BITS), recip));
    return dk_mul_pot(sum, ACC_BITS - OUT_BITS);
}

void dk_log_softmax_s8(const dk_log_softmax_params *params, int32_t outer, int32_t depth,
                       const int8_t *input, int8_t *output)
{
    enum { IN_BITS = 5, ACC_BITS = 12, OUT_BITS = 4 };
    int32_t i, c;
    for (i = 0; i < outer; ++i) {
        const int8_t *row = input + i * depth;
        int8_t *out = output + i * depth;
        int32_t max_in_row = -128, sum = 0, log_sum, threshold;
        for (c = 0; c < depth; ++c) {
            max_in_row = row[c] > max_in_row ? row[c] : max_in_row;
        }
        for (c = 0; c < depth; ++c) {
            const int32_t diff = row[c] - max_in_row;
            if (diff >= params->diff_min) {
                const int32_t diff_q5 = dk_mbqm(diff, params->input_multiplier, params->input_left_shift);
                sum = dk_wrap_add(sum, dk_rdbpot(dk_fx_exp_on_negative_values(diff_q5, IN_BITS), ACC_BITS));
            }
        }
        log_sum = dk_log_q5_of_q12(sum);
        threshold = dk_mbqm(dk_wrap_add(log_sum, DK_INT32_MIN), params->reverse_multiplier,
                            params->reverse_shift);
        if (params->diff_min - 1 > threshold) {
            threshold = params->diff_min - 1;
        }
        for (c = 0; c < depth; ++c) {
            const int32_t diff = row[c] - max_in_row;
            if (diff > threshold) {
                const int32_t diff_q5 = dk_mbqm(diff, params->input_multiplier, params->input_left_shift);
                const int32_t y = dk_rdbpot(dk_wrap_sub(diff_q5, log_sum), 31 - IN_BITS - OUT_BITS) + 127;
                out[c] = (int8_t)dk_clamp(y, -128, 127);
            } else {
                out[c] = -128;
            }
        }
    }
}
