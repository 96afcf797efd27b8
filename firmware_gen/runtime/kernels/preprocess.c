/*
 * preprocess.c - one window of raw int16 sensor samples -> the model's int8 input:
 * mean removal, RMS normalisation and quantization, with integers only.
 *
 * The definition, with the bound behind every type below, is the docstring of
 * drsn_edge/preprocess.py (and docs/preprocessing.md); this is its C twin and must give
 * the same bytes (tests/test_preprocess.py runs both on randomized windows). In short:
 *   m = floor((2*sum + N) / 2N), c = x - m, E = sum c^2          (silent when E == 0)
 *   P = E*N, k = clz64(P)/2, r = isqrt(P << 2k)                  (sqrt(P) ~ r 2^-k)
 *   scale = ms 2^es, D = (r*ms) >> 24, t = 60 - bitlen(N)
 *   M = (N<<t + D/2) / D, sh = t + 24 + es - k
 *   q = clamp(z + round_half_away(c*M / 2^sh), -128, 127)
 * Two passes over the samples (sums, output) and one 64-bit division per window.
 */
#include <string.h>

#include "dk.h"
#include "dk_acle.h"

#define PRE_MAX_WINDOW 65536u
#define PRE_SATURATED 256

static int bit_length64(uint64_t v)
{
    int n = 0;
    for (int s = 32; s > 0; s >>= 1) {
        if (v >> s) {
            v >>= s;
            n += s;
        }
    }
    return n + (v != 0);
}

/* floor(sqrt(v)), digit by digit: exact for every uint64. */
static uint32_t isqrt64(uint64_t v)
{
    uint64_t root = 0;
    for (uint64_t bit = (uint64_t)1 << 62; bit != 0; bit >>= 2) {
        uint64_t trial = root + bit;
        if (v >= trial) {
            v -= trial;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
    }
    return (uint32_t)root;
}

static int8_t clamp8(int32_t v)
{
    return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
}

int32_t dk_preprocess_s16(const int16_t *samples, uint32_t n, float scale, int32_t zero_point,
                          int8_t *out, dk_preprocess_info *info)
{
    if (n == 0 || n > PRE_MAX_WINDOW) {
        return DK_PRE_BAD_LENGTH;
    }
    uint32_t bits;
    memcpy(&bits, &scale, sizeof bits);
    uint32_t exp_field = (bits >> 23) & 0xFFu;
    if ((bits >> 31) != 0 || exp_field == 0 || exp_field == 0xFFu) {
        return DK_PRE_BAD_SCALE;
    }
    if (zero_point < -128 || zero_point > 127) {
        return DK_PRE_BAD_ZERO_POINT;
    }
    const uint64_t ms = (bits & 0x7FFFFFu) | 0x800000u;
    const int32_t es = (int32_t)exp_field - 150;

    /* 1. mean, rounded half up (floor division of a possibly negative numerator). The sum
     * fits int32: n <= 2^16 samples of at least -2^15 and at most 2^15 - 1; the sum of
     * squares is below 2^46. */
    int32_t sum = 0;
    int64_t squares = 0;
    for (uint32_t i = 0; i < n; i++) {
        int32_t x = samples[i];
        sum += x;
        squares += (int64_t)x * x;
    }
    const int64_t num = 2 * (int64_t)sum + (int64_t)n, den = 2 * (int64_t)n;
    int64_t mean = num / den;
    if (num % den < 0) {
        mean -= 1;
    }
    const int32_t m = (int32_t)mean; /* within int16: the mean of int16 values */

    /* 2-3. energy of the centred window, sum (x - m)^2 = squares - 2 m sum + n m^2: the
     * same integer in one pass less (every term below 2^48 in magnitude) */
    const int64_t energy = squares - 2 * (int64_t)m * sum + (int64_t)n * m * m;
    if (info) {
        info->mean = m;
        info->energy = energy;
        info->multiplier = 0;
        info->shift = 0;
    }
    if (energy == 0) { /* silent: every sample equal */
        memset(out, (uint8_t)clamp8(zero_point), n);
        return DK_PRE_OK;
    }

    /* 4. sqrt(E*N) normalised: P < 2^64, P << 2k in [2^62, 2^64), r in [2^31, 2^32) */
    const uint64_t p = (uint64_t)energy * n;
    const int32_t k = (64 - bit_length64(p)) / 2;
    const uint64_t r = isqrt64(p << (2 * k));

    /* 5-6. the per-window reciprocal */
    const uint64_t d = (r * ms) >> 24; /* < 2^56 before the shift, >= 2^30 after */
    const int32_t t = 60 - bit_length64(n);
    const int32_t mult = (int32_t)((((uint64_t)n << t) + (d >> 1)) / d); /* <= 2^30 */
    const int32_t sh = t + 24 + es - k;
    if (info) {
        info->multiplier = mult;
        info->shift = sh;
    }

    /* 7-8. per sample: multiply, shift with rounding half away from zero, clamp.
     * sign(p) * ((|p| + 2^(s-1)) >> s) equals (p + 2^(s-1) - [p < 0]) >> s (an arithmetic
     * shift, i.e. floor): for p < 0, -floor((-p + h) / 2^s) = floor((p + h - 1) / 2^s)
     * because 2^s - h = h. p < 0 exactly when c < 0 (M > 0). */
    if (sh <= 0) { /* a gain of 2^27 or more per LSB: any non-zero sample saturates */
        for (uint32_t i = 0; i < n; i++) {
            int32_t c = samples[i] - m;
            out[i] = clamp8(zero_point + (c > 0 ? PRE_SATURATED : c < 0 ? -PRE_SATURATED : 0));
        }
        return DK_PRE_OK;
    }
    if (sh >= 48) { /* |c*M| < 2^47 <= 2^(sh-1): every sample rounds to 0 */
        memset(out, (uint8_t)clamp8(zero_point), n);
        return DK_PRE_OK;
    }
    /* The zero point joins the rounding constant (|z 2^sh| <= 2^54): adding a multiple of
     * 2^sh commutes with the floor. */
    const int64_t rnd = ((int64_t)1 << (sh - 1)) + (int64_t)zero_point * ((int64_t)1 << sh);
    const int16_t *x = samples, *end = samples + n;
    int8_t *q = out;
    if (sh >= 32) {
        /* The usual case (sh is about 35 for a unit-RMS window at 1/32 per LSB): the high
         * word of the 64-bit sum, shifted by sh - 32, is z + y, with |y| < 2^16. */
        const int32_t s_hi = sh - 32;
        while (x != end) {
            int32_t c = *x++ - m;
            int64_t acc = (int64_t)c * mult + rnd - (c < 0);
            *q++ = (int8_t)dk_clamp8((int32_t)(acc >> 32) >> s_hi, -128, 127);
        }
        return DK_PRE_OK;
    }
    while (x != end) { /* 1 <= sh <= 31: a gain large enough for z + y to leave int32 */
        int32_t c = *x++ - m;
        int64_t v = ((int64_t)c * mult + rnd - (c < 0)) >> sh;
        *q++ = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
    }
    return DK_PRE_OK;
}
