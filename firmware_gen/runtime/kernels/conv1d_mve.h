/*
 * conv1d_mve.h - dk_conv1d_s8_fast with Helium (MVE), included by conv1d.c on cores with
 * integer MVE (dk_mve.h). Same records (codegen.pack_conv1d_fast), same widened int16 image
 * (dk_c1f_widen) and the same arithmetic as the DSP sweep, so the outputs are identical.
 *
 * Per pass: 4 output columns x 1 channel pair (8 accumulators). Per 8 taps: two gathers
 * (VLDRH with offsets {0..3, 8..11} and {4..7, 12..15}) pick channel o's and channel o+1's
 * taps out of the record's groups of 4, four VLDRH of the columns' image, eight VMLADAVA
 * (8 int16 products summed into a scalar each). A last group of 4 taps is loaded with a
 * lane predicate (the other lanes read as zero).
 *
 * Requantization, per channel, the 4 columns in the 4 lanes of one vector:
 *     t = VRMULH(acc, m) + (acc >> 31) + rnd;  y = clamp(t >> e, lo, hi)
 * (rnd = 2^(e-1) + (zp << e) from the record), the bytes stored with one scatter (columns
 * are out_c bytes apart). A block's last pass with fewer than 4 columns repeats its last
 * column (the repeated lanes store the same bytes again); an odd last channel is the pair
 * whose second channel is zero, stored without it.
 */
#ifndef DK_CONV1D_MVE_H
#define DK_CONV1D_MVE_H

#include "conv1d.h"
#include "dk_mve.h"

#if DK_USE_MVE

/* rec's channel pair over 4 image columns x0..x3: acc[c][k] for channel o + c, column k */
DK_INLINE void dk_c1f_mve_dot(const int16_t *rec, const int16_t *x0, const int16_t *x1, const int16_t *x2,
                              const int16_t *x3, int32_t taps, int32_t acc[2][4])
{
    static const uint16_t lo_idx[8] = {0, 1, 2, 3, 8, 9, 10, 11};
    const uint16x8_t off0 = vld1q_u16(lo_idx);
    const uint16x8_t off1 = vaddq_n_u16(off0, 4);
    const int16_t *w = rec + DK_C1F_HEAD;
    int32_t a0 = (int32_t)dk_c1_load32(rec), a1 = (int32_t)dk_c1_load32(rec + 2);
    int32_t b0 = a0, c0 = a0, d0 = a0, b1 = a1, c1 = a1, d1 = a1;
    int32_t s;
    for (s = taps >> 3; s > 0; --s) {
        const int16x8_t w0 = vldrhq_gather_shifted_offset_s16(w, off0);
        const int16x8_t w1 = vldrhq_gather_shifted_offset_s16(w, off1);
        int16x8_t v = vld1q_s16(x0);
        a0 = vmladavaq_s16(a0, v, w0);
        a1 = vmladavaq_s16(a1, v, w1);
        v = vld1q_s16(x1);
        b0 = vmladavaq_s16(b0, v, w0);
        b1 = vmladavaq_s16(b1, v, w1);
        v = vld1q_s16(x2);
        c0 = vmladavaq_s16(c0, v, w0);
        c1 = vmladavaq_s16(c1, v, w1);
        v = vld1q_s16(x3);
        d0 = vmladavaq_s16(d0, v, w0);
        d1 = vmladavaq_s16(d1, v, w1);
        w += 16;
        x0 += 8;
        x1 += 8;
        x2 += 8;
        x3 += 8;
    }
    if (taps & 4) {   /* the last group of 4: lanes 4..7 load as zero */
        const mve_pred16_t p = vctp16q(4);
        const int16x8_t w0 = vldrhq_gather_shifted_offset_z_s16(w, off0, p);
        const int16x8_t w1 = vldrhq_gather_shifted_offset_z_s16(w, off1, p);
        int16x8_t v = vldrhq_z_s16(x0, p);
        a0 = vmladavaq_s16(a0, v, w0);
        a1 = vmladavaq_s16(a1, v, w1);
        v = vldrhq_z_s16(x1, p);
        b0 = vmladavaq_s16(b0, v, w0);
        b1 = vmladavaq_s16(b1, v, w1);
        v = vldrhq_z_s16(x2, p);
        c0 = vmladavaq_s16(c0, v, w0);
        c1 = vmladavaq_s16(c1, v, w1);
        v = vldrhq_z_s16(x3, p);
        d0 = vmladavaq_s16(d0, v, w0);
        d1 = vmladavaq_s16(d1, v, w1);
    }
    acc[0][0] = a0; acc[0][1] = b0; acc[0][2] = c0; acc[0][3] = d0;
    acc[1][0] = a1; acc[1][1] = b1; acc[1][2] = c1; acc[1][3] = d1;
}

/* One channel's 4 outputs (lanes: columns) from its requantization words rq (m, rnd, e) */
DK_INLINE void dk_c1f_mve_out(const int32_t acc[4], const int16_t *rq, int32x4_t lo, int32x4_t hi,
                              int8_t *base, uint32x4_t offsets)
{
    const int32_t m = (int32_t)dk_c1_load32(rq);
    const int32_t rnd = (int32_t)dk_c1_load32(rq + 2);
    const int32_t e = (int32_t)dk_c1_load32(rq + 4);
    const int32x4_t a = vld1q_s32(acc);
    int32x4_t t = vrmulhq_s32(a, vdupq_n_s32(m));
    t = vaddq_s32(t, vshrq_n_s32(a, 31));
    t = vaddq_n_s32(t, rnd);
    t = vshlq_r_s32(t, -e);
    t = vminq_s32(vmaxq_s32(t, lo), hi);
    vstrbq_scatter_offset_s32(base, offsets, t);
}

/* Columns [0, n) of the widened block x every channel pair */
DK_INLINE void dk_c1f_mve_block(const dk_conv1d_params *p, const int16_t *packed, const int16_t *image,
                                int32_t n, int8_t *out)
{
    const int32_t out_c = p->out_c;
    const int32_t taps = p->taps;
    const int32_t col_step = p->stride * p->in_c;
    const int32_t record = dk_c1f_record(taps);
    const int32_t pairs = (out_c + 1) >> 1;
    const int32x4_t lo = vdupq_n_s32(p->activation.min < -128 ? -128 : p->activation.min);
    const int32x4_t hi = vdupq_n_s32(p->activation.max > 127 ? 127 : p->activation.max);
    int32_t j;
    for (j = 0; j < n; j += 4) {
        const int32_t c1 = j + 1 < n ? 1 : 0;
        const int32_t c2 = j + 2 < n ? 2 : c1;
        const int32_t c3 = j + 3 < n ? 3 : c2;
        const int16_t *x0 = image + j * col_step;
        uint32_t cols[4];
        uint32x4_t offsets;
        const int16_t *rec = packed;
        int8_t *o = out + j * out_c;
        int32_t pr;
        cols[0] = 0;
        cols[1] = (uint32_t)(c1 * out_c);
        cols[2] = (uint32_t)(c2 * out_c);
        cols[3] = (uint32_t)(c3 * out_c);
        offsets = vld1q_u32(cols);
        for (pr = 0; pr < pairs; ++pr) {
            int32_t acc[2][4];
            const int16_t *rq = rec + DK_C1F_HEAD + 2 * taps;
            dk_c1f_mve_dot(rec, x0, x0 + c1 * col_step, x0 + c2 * col_step, x0 + c3 * col_step, taps, acc);
            dk_c1f_mve_out(acc[0], rq, lo, hi, o, offsets);
            if (2 * pr + 1 < out_c) {
                dk_c1f_mve_out(acc[1], rq + 6, lo, hi, o + 1, offsets);
            }
            o += 2;
            rec += record;
        }
    }
}

/* dk_conv1d_s8_fast on an MVE core (conv1d.c calls it first thing) */
__attribute__((noinline)) static void dk_conv1d_s8_fast_mve(const dk_conv1d_params *p, const int8_t *input,
                                                            const int16_t *packed, int16_t *scratch,
                                                            int8_t *output)
{
    int32_t x0;
    for (x0 = 0; x0 < p->out_w; x0 += p->block) {
        const int32_t n = p->out_w - x0 < p->block ? p->out_w - x0 : p->block;
        dk_c1f_widen(p, input, x0 * p->stride - p->pad, (n - 1) * p->stride + p->kernel, scratch);
        dk_c1f_mve_block(p, packed, scratch, n, output + x0 * p->out_c);
    }
}

#endif /* DK_USE_MVE */

#endif /* DK_CONV1D_MVE_H */
