/*
 * l2_normalization.c - L2_NORMALIZATION over the last axis (int8 in, int8 out in units of
 * 1/128, as TFLM's integer kernel: the output tensor's own quantization is not used).
 *
 * Per row: the int32 sum of squares of (x - zero point); its inverse square root as a
 * multiplier and a right shift (five fixed-point Newton-Raphson steps on the sum scaled
 * into [2^27, 2^29), three integer bits); each output is (x - zero point) times that
 * multiplier, shifted, clamped to int8. A sum of 0 or 1 takes the largest multiplier.
 */
#include "fixedpoint.h"

static void inv_sqrt(int32_t input, int32_t *multiplier, int32_t *shift)
{
    int32_t s = 11, pairs = 0, i;
    int32_t x, half_input, x3;
    const int32_t one_f3 = 1 << 28, three_halves_f3 = (1 << 28) + (1 << 27);
    if (input <= 1) {
        *multiplier = DK_INT32_MAX;
        *shift = 0;
        return;
    }
    while (input >= (1 << 29)) {
        input /= 4;
        ++s;
    }
    /* the largest even left shift that keeps input below 2^29, less one pair */
    while ((input << (2 * (pairs + 1))) < (1 << 29) && pairs < 14) {
        ++pairs;
    }
    /* TFLM counts (leading zeros - 1) / 2 pairs and uses one fewer: the same number */
    s -= pairs;
    input <<= 2 * pairs;
    half_input = dk_rdbpot(input >> 1, 1);
    x = one_f3;
    for (i = 0; i < 5; ++i) {
        x3 = dk_sat_shl(dk_srdhm(dk_srdhm(x, x), x), 6);
        x = dk_sat_shl(dk_wrap_sub(dk_srdhm(three_halves_f3, x), dk_srdhm(half_input, x3)), 3);
    }
    x = dk_srdhm(x, 1518500250);          /* times sqrt(2) / 2 in Q0.31 */
    if (s < 0) {
        x = dk_wrap_shl(x, -s);
        s = 0;
    }
    *multiplier = x;
    *shift = s;
}

void dk_l2_normalization_s8(int32_t zero_point, int32_t outer, int32_t depth,
                            const int8_t *input, int8_t *output)
{
    int32_t o, i;
    for (o = 0; o < outer; ++o) {
        const int8_t *row = input + o * depth;
        int32_t acc = 0, multiplier, shift;
        for (i = 0; i < depth; ++i) {
            const int32_t v = row[i] - zero_point;
            acc += v * v;
        }
        inv_sqrt(acc, &multiplier, &shift);
        for (i = 0; i < depth; ++i) {
            const int32_t y = dk_mbqm(row[i] - zero_point, multiplier, 7 - shift);
            output[o * depth + i] = (int8_t)dk_clamp(y, -128, 127);
        }
    }
}
