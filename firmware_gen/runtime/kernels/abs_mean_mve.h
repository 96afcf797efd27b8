/*
 * abs_mean_mve.h - dk_abs_mean_s8 with Helium (MVE), included by abs_mean.c on cores with
 * integer MVE (dk_mve.h). The data is [positions][channels]: a vector holds 8 adjacent
 * channels of one position (VLDRB.U16 of the raw bytes, which are the table's indexes), one
 * VLDRB gather looks all 8 up in the ABS table, one VADD.I16 sums them per channel. int16
 * sums are exact for up to 256 positions (|v| <= 128), so longer inputs are summed in runs of
 * 256 added up in int32. A last group of fewer channels is lane-predicated (the predicated
 * loads read zeros). The requantization of the sums is dk_abs_mean_s8's, per channel.
 */
#ifndef DK_ABS_MEAN_MVE_H
#define DK_ABS_MEAN_MVE_H

#include "dk_acle.h"
#include "dk_mve.h"

#if DK_USE_MVE

#define DK_ABS_MEAN_RUN 256

/* The per-channel sums of channels [c, c + 8) of positions [from, to), to - from <= 256 */
DK_INLINE int16x8_t dk_abs_sum_mve(const int8_t abs_table[256], int32_t from, int32_t to, int32_t channels,
                                   const int8_t *x, int8_t *abs_out, int32_t c, mve_pred16_t p)
{
    const uint8_t *xp = (const uint8_t *)x + from * channels + c;
    int16x8_t acc = vdupq_n_s16(0);
    int32_t i;
    if (abs_out) {
        int8_t *ap = abs_out + from * channels + c;
        for (i = from; i < to; ++i) {
            const int16x8_t v = vldrbq_gather_offset_z_s16(abs_table, vldrbq_z_u16(xp, p), p);
            vstrbq_p_s16(ap, v, p);
            acc = vaddq_s16(acc, v);
            xp += channels;
            ap += channels;
        }
    } else {
        for (i = from; i < to; ++i) {
            acc = vaddq_s16(acc, vldrbq_gather_offset_z_s16(abs_table, vldrbq_z_u16(xp, p), p));
            xp += channels;
        }
    }
    return acc;
}

/* The sums of channels [c, c + 8) (those below channels) over every position */
DK_INLINE void dk_abs_sums_mve(const int8_t abs_table[256], int32_t positions, int32_t channels,
                               const int8_t *x, int8_t *abs_out, int32_t c, int32_t sums[8])
{
    const mve_pred16_t p = vctp16q((uint32_t)(channels - c));
    int32_t i, k;
    for (k = 0; k < 8; ++k) {
        sums[k] = 0;
    }
    for (i = 0; i < positions; i += DK_ABS_MEAN_RUN) {
        const int32_t to = positions - i < DK_ABS_MEAN_RUN ? positions : i + DK_ABS_MEAN_RUN;
        int16_t part[8];
        vst1q_s16(part, dk_abs_sum_mve(abs_table, i, to, channels, x, abs_out, c, p));
        for (k = 0; k < 8; ++k) {
            sums[k] += part[k];
        }
    }
}

#endif /* DK_USE_MVE */

#endif /* DK_ABS_MEAN_MVE_H */
