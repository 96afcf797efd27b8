/*
 * fully_connected_mve.h - FULLY_CONNECTED with Helium (MVE), included by fully_connected.c on
 * cores with integer MVE (dk_mve.h). The same int32 accumulator as the reference loop,
 * sum over d of (w[d] + filter_offset) * (x[d] + input_offset) + bias, taken apart as
 *     sum(w * x) + input_offset * sum(w) + filter_offset * sum(x) + depth * filter_offset * input_offset
 * (all modulo 2^32, as the reference's int32 arithmetic): per 16 weights one VLDRB of the
 * row, VMLADAVA.S8 (16 products into the accumulator) and VADDVA.S8 (the row's sum), the
 * input loaded once per pair of rows; a last part of fewer than 16 is loaded with a lane
 * predicate. The requantization is the reference's (dk_mbqm).
 */
#ifndef DK_FULLY_CONNECTED_MVE_H
#define DK_FULLY_CONNECTED_MVE_H

#include "conv1d.h"
#include "dk_mve.h"
#include "fixedpoint.h"

#if DK_USE_MVE

static void dk_fully_connected_s8_mve(const dk_fc_params *params, const dk_channel_requant *quant,
                                      int32_t batches, int32_t accum_depth, int32_t out_depth,
                                      const int8_t *input, const int8_t *weights, const int32_t *bias,
                                      int8_t *output)
{
    const uint32_t io = (uint32_t)params->input_offset;
    const uint32_t fo = (uint32_t)params->filter_offset;
    const uint32_t const_term = (uint32_t)accum_depth * fo * io;
    int32_t b, o, d;
    for (b = 0; b < batches; ++b) {
        const int8_t *x = input + b * accum_depth;
        int32_t sx = 0;
        for (d = 0; d < accum_depth; d += 16) {
            sx = vaddvaq_p_s8(sx, vldrbq_z_s8(x + d, vctp8q((uint32_t)(accum_depth - d))),
                              vctp8q((uint32_t)(accum_depth - d)));
        }
        for (o = 0; o < out_depth; o += 2) {
            const int32_t two = o + 1 < out_depth;
            const int8_t *w0 = weights + o * accum_depth;
            const int8_t *w1 = two ? w0 + accum_depth : w0;
            int32_t a0 = 0, a1 = 0, s0 = 0, s1 = 0;
            int32_t k;
            for (d = 0; d < accum_depth; d += 16) {
                const mve_pred16_t p = vctp8q((uint32_t)(accum_depth - d));
                const int8x16_t xv = vldrbq_z_s8(x + d, p);
                const int8x16_t v0 = vldrbq_z_s8(w0 + d, p);
                const int8x16_t v1 = vldrbq_z_s8(w1 + d, p);
                a0 = vmladavaq_s8(a0, v0, xv);
                s0 = vaddvaq_s8(s0, v0);
                a1 = vmladavaq_s8(a1, v1, xv);
                s1 = vaddvaq_s8(s1, v1);
            }
            for (k = 0; k < 1 + two; ++k) {
                const int32_t q = quant->per_channel ? o + k : 0;
                uint32_t acc = (uint32_t)(k ? a1 : a0) + io * (uint32_t)(k ? s1 : s0) + fo * (uint32_t)sx
                               + const_term;
                int32_t y;
                if (bias) {
                    acc += (uint32_t)bias[o + k];
                }
                y = dk_mbqm((int32_t)acc, quant->multiplier[q], quant->shift[q]) + params->output_offset;
                output[o + k] = (int8_t)dk_clamp(y, params->activation.min, params->activation.max);
            }
        }
        output += out_depth;
    }
}

/*
 * dk_fully_connected_s8_fast's dot product (one widened input row against one record of
 * dk_conv1d_s8_fast, conv1d.h): per 8 taps one VLDRH of the row and, for the two channels,
 * two VLDRW gathers of 4 words (2 taps each: channel o's words 0, 1, 4, 5 of the 16, o+1's
 * the same + 8 bytes) and two VMLADAVA.S16: 5 instructions for 16 MACs, against the DSP
 * loop's 6 for 8. The base vector walks the record by the gather's writeback. A last group
 * of 4 taps: gathers predicated to 2 lanes (zero weights meet the row's next 4 int16, which
 * the image's slack holds). Same sums as dk_c1f_dot, so the same outputs.
 */
DK_INLINE void dk_fc_dot_mve(const int16_t *rec, const int16_t *x, int32_t taps, int32_t acc[2])
{
    static const uint32_t lanes[4] = {0, 4, 16, 20};
    /* each gather reads base + 32 with writeback; the first one the record's weights */
    uint32x4_t base = vaddq_n_u32(vld1q_u32(lanes), (uint32_t)(uintptr_t)(rec + DK_C1F_HEAD) - 32u);
    int32_t a0 = (int32_t)dk_c1_load32(rec), a1 = (int32_t)dk_c1_load32(rec + 2);
    int32_t s;
    for (s = taps >> 3; s > 0; --s) {
        const int16x8_t w0 = vreinterpretq_s16_s32(vldrwq_gather_base_wb_s32(&base, 32));
        const int16x8_t w1 = vreinterpretq_s16_s32(vldrwq_gather_base_s32(base, 8));
        const int16x8_t v = vld1q_s16(x);
        a0 = vmladavaq_s16(a0, v, w0);
        a1 = vmladavaq_s16(a1, v, w1);
        x += 8;
    }
    if (taps & 4) {
        const mve_pred16_t p = vctp32q(2);
        const int16x8_t w0 = vreinterpretq_s16_s32(vldrwq_gather_base_z_s32(base, 32, p));
        const int16x8_t w1 = vreinterpretq_s16_s32(vldrwq_gather_base_z_s32(base, 40, p));
        const int16x8_t v = vld1q_s16(x);
        a0 = vmladavaq_s16(a0, v, w0);
        a1 = vmladavaq_s16(a1, v, w1);
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* dk_fc_dot_mve on an int8-weight record (size mode): per 8 taps two VLDRB.S16 gathers
 * sign-extend the two channels' weights into the image's order. The record's bias is not
 * doubled, so the sum is, at the end (as dk_c1f_dot does). Out of line, so that the speed
 * path's loop around dk_fc_dot_mve keeps its registers. */
__attribute__((noinline)) static void dk_fc_dot8_mve(const int16_t *rec, const int16_t *x, int32_t taps, int32_t acc[2])
{
    /* image position e of a group of 4 holds tap {0, 2, 1, 3}[e]; a group of the record is
     * channel o's 4 bytes in tap order, then o+1's (these + 4) */
    static const uint16_t order[8] = {0, 2, 1, 3, 8, 10, 9, 11};
    const uint16x8_t off0 = vld1q_u16(order);
    const uint16x8_t off1 = vaddq_n_u16(off0, 4);
    const int8_t *w = (const int8_t *)(rec + DK_C1F_HEAD);
    uint32_t a0 = dk_c1_load32(rec), a1 = dk_c1_load32(rec + 2);
    int32_t s;
    for (s = taps >> 3; s > 0; --s) {
        const int16x8_t v = vld1q_s16(x);
        a0 = (uint32_t)vmladavaq_s16((int32_t)a0, v, vldrbq_gather_offset_s16(w, off0));
        a1 = (uint32_t)vmladavaq_s16((int32_t)a1, v, vldrbq_gather_offset_s16(w, off1));
        w += 16;
        x += 8;
    }
    if (taps & 4) {   /* lanes 4..7 of the weights load as zero */
        const mve_pred16_t p = vctp16q(4);
        const int16x8_t v = vld1q_s16(x);
        a0 = (uint32_t)vmladavaq_s16((int32_t)a0, v, vldrbq_gather_offset_z_s16(w, off0, p));
        a1 = (uint32_t)vmladavaq_s16((int32_t)a1, v, vldrbq_gather_offset_z_s16(w, off1, p));
    }
    acc[0] = (int32_t)(a0 * 2u);
    acc[1] = (int32_t)(a1 * 2u);
}

#endif /* DK_USE_MVE */

#endif /* DK_FULLY_CONNECTED_MVE_H */
