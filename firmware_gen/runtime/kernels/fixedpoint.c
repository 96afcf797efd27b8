/*
 * fixedpoint.c - fixed-point transcendental helpers for LOGISTIC and SOFTMAX.
 *
 * TFLM evaluates exp, 1/(1+x) and the logistic function on Q-format int32
 * values with a fixed sequence of rounding multiplies. Matching TFLM bit for
 * bit means performing the very same sequence, so the steps below follow
 * the standard construction:
 *
 *  exp(a), a <= 0:  write a = (a mod 1/4) - 1/4 - m, where m >= 0 is a
 *      multiple of 1/4. exp of the part in [-1/4, 0) comes from a
 *      4th-order Taylor polynomial centred at -1/8; a factor exp(-2^j) is
 *      then multiplied in for every set bit 2^j of m ("barrel shifter").
 *  1/(1+x), x in [0, 1): Newton-Raphson on the half denominator (1+x)/2,
 *      starting from 48/17 - 32/17 * d, three iterations, in Q2.29.
 *  logistic(a) = 1/(1 + exp(-|a|)), mirrored for a < 0, 1/2 at 0.
 */
#include "fixedpoint.h"

/* Q0.31 constants (value * 2^31, rounded). */
#define DK_Q31_EXP_MINUS_ONE_EIGHTH 1895147668 /* exp(-1/8) */
#define DK_Q31_ONE_THIRD 715827883             /* 1/3 */
/* exp(-2^j) for j = -2 .. 4, Q0.31. */
static const int32_t dk_exp_minus_pow2_q31[7] = {
    1672461947, /* exp(-1/4) */
    1302514674, /* exp(-1/2) */
    790015084,  /* exp(-1)   */
    290630308,  /* exp(-2)   */
    39332535,   /* exp(-4)   */
    720401,     /* exp(-8)   */
    242,        /* exp(-16)  */
};
/* Q2.29 constants for the reciprocal's initial estimate. */
#define DK_Q29_48_OVER_17 1515870810
#define DK_Q29_MINUS_32_OVER_17 (-1010580540)

int32_t dk_fx_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    return dk_srdhm(a, b);
}

int32_t dk_fx_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    return dk_rdbpot(x, exponent);
}

int32_t dk_fx_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                               int32_t shift)
{
    return dk_mbqm(x, multiplier, shift);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out. */
static int32_t dk_exp_quarter_interval(int32_t a)
{
    /* Taylor expansion of exp around -1/8: x = a + 1/8. */
    const int32_t x = dk_wrap_add(a, (int32_t)1 << 28);
    const int32_t x2 = dk_srdhm(x, x);
    const int32_t x3 = dk_srdhm(x2, x);
    const int32_t x4 = dk_srdhm(x2, x2);
    const int32_t x4_over_4 = dk_rdbpot(x4, 2);
    /* x^4/24 + x^3/6 + x^2/2 = ((x^4/4 + x^3) / 3 + x^2) / 2 */
    const int32_t poly = dk_rdbpot(
        dk_wrap_add(dk_srdhm(dk_wrap_add(x4_over_4, x3), DK_Q31_ONE_THIRD), x2),
        1);
    return dk_wrap_add(DK_Q31_EXP_MINUS_ONE_EIGHTH,
                       dk_srdhm(DK_Q31_EXP_MINUS_ONE_EIGHTH,
                                dk_wrap_add(x, poly)));
}

int32_t dk_fx_exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    const int32_t fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t mask = one_quarter - 1;
    /* a = (a mod 1/4) - 1/4 - remainder, with remainder >= 0. */
    const int32_t a_mod_quarter_minus_quarter =
        dk_wrap_sub(a & mask, one_quarter);
    const int32_t remainder = dk_wrap_sub(a_mod_quarter_minus_quarter, a);
    int32_t result = dk_exp_quarter_interval(
        dk_sat_shl(a_mod_quarter_minus_quarter, integer_bits));
    int32_t j;

    /* Multiply in exp(-2^j) for every set bit 2^j (j >= -2) of remainder
     * that the input format can hold. */
    for (j = -2; j <= 4; ++j) {
        if (integer_bits > j) {
            const int32_t bit = (int32_t)1 << (fractional_bits + j);
            if (remainder & bit) {
                result = dk_srdhm(result, dk_exp_minus_pow2_q31[j + 2]);
            }
        }
    }
    /* Formats that can hold values below -32: exp is zero there. */
    if (integer_bits > 5) {
        const int32_t clamp = -((int32_t)1 << (36 - integer_bits));
        if (a < clamp) {
            result = 0;
        }
    }
    if (a == 0) {
        result = DK_INT32_MAX; /* 1.0 in Q0.31, saturated */
    }
    return result;
}

int32_t dk_fx_two_over_one_plus_x(int32_t a)
{
    /* d = (1 + a) / 2, rounded half away from zero, in Q0.31. */
    const int64_t sum = (int64_t)a + (int64_t)DK_INT32_MAX;
    const int32_t half_denominator =
        (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    /* Newton-Raphson for 1/d in Q2.29. */
    int32_t x = dk_wrap_add(DK_Q29_48_OVER_17,
                            dk_srdhm(half_denominator, DK_Q29_MINUS_32_OVER_17));
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t d_times_x = dk_srdhm(half_denominator, x);
        const int32_t one_minus_d_times_x =
            dk_wrap_sub((int32_t)1 << 29, d_times_x);
        /* x * (1 - d x) is in Q4.27; bring it back to Q2.29. */
        x = dk_wrap_add(x, dk_sat_shl(dk_srdhm(x, one_minus_d_times_x), 2));
    }
    return x;
}

int32_t dk_fx_one_over_one_plus_x(int32_t a)
{
    /* 1/(1+a) = (1/d) / 2: reinterpret Q2.29 as Q1.30, then to Q0.31. */
    return dk_sat_shl(dk_fx_two_over_one_plus_x(a), 1);
}

int32_t dk_fx_logistic(int32_t a, int32_t integer_bits)
{
    int32_t abs_a;
    int32_t positive_result;
    if (a == 0) {
        return (int32_t)1 << 30; /* 0.5 */
    }
    abs_a = a > 0 ? a : dk_wrap_sub(0, a);
    positive_result = dk_fx_one_over_one_plus_x(
        dk_fx_exp_on_negative_values(dk_wrap_sub(0, abs_a), integer_bits));
    return a > 0 ? positive_result
                 : dk_wrap_sub(DK_INT32_MAX, positive_result);
}
