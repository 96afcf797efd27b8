/*
 * mean_mve.h - dk_mean_s8's sums with Helium (MVE), included by mean.c on cores with integer
 * MVE (dk_mve.h). The input is [outer][reduce][inner]: with inner > 1 a vector holds 8
 * adjacent inner positions (VLDRB.S16), one VADD.I16 per reduced step, int16 sums exact for
 * runs of up to 256 steps (|x| <= 128), added up in int32; with inner == 1 the reduced run
 * is contiguous and VADDVA.S8 sums 16 bytes at a time. Last groups are lane-predicated (the
 * predicated loads read zeros). The requantization stays mean.c's, per output.
 */
#ifndef DK_MEAN_MVE_H
#define DK_MEAN_MVE_H

#include "dk_acle.h"
#include "dk_mve.h"

#if DK_USE_MVE

#define DK_MEAN_RUN 256

/* Sums over the reduced axis of inner positions [i, i + 8) (those below inner) */
DK_INLINE void dk_mean_sums_mve(const int8_t *block, int32_t reduce, int32_t inner, int32_t i, int32_t sums[8])
{
    const mve_pred16_t p = vctp16q((uint32_t)(inner - i));
    int32_t r0, r, k;
    for (k = 0; k < 8; ++k) {
        sums[k] = 0;
    }
    for (r0 = 0; r0 < reduce; r0 += DK_MEAN_RUN) {
        const int32_t to = reduce - r0 < DK_MEAN_RUN ? reduce : r0 + DK_MEAN_RUN;
        const int8_t *q = block + r0 * inner + i;
        int16x8_t acc = vdupq_n_s16(0);
        int16_t part[8];
        for (r = r0; r < to; ++r) {
            acc = vaddq_s16(acc, vldrbq_z_s16(q, p));
            q += inner;
        }
        vst1q_s16(part, acc);
        for (k = 0; k < 8; ++k) {
            sums[k] += part[k];
        }
    }
}

/* The sum of a contiguous run of n bytes */
DK_INLINE int32_t dk_mean_sum_run_mve(const int8_t *x, int32_t n)
{
    int32_t sum = 0, r;
    for (r = 0; r < n; r += 16) {
        const mve_pred16_t p = vctp8q((uint32_t)(n - r));
        sum = vaddvaq_p_s8(sum, vldrbq_z_s8(x + r, p), p);
    }
    return sum;
}

#endif /* DK_USE_MVE */

#endif /* DK_MEAN_MVE_H */
