/*
 * conv1d.h - dk_conv1d_s8 as a DK_INLINE function (see conv1d.c for the algorithm):
 * generated model.c calls dk_conv1d_s8_inline with its static const parameters, so the
 * compiler specialises the loops for that layer's taps, stride and channels.
 */
#ifndef DK_CONV1D_H
#define DK_CONV1D_H

#include <string.h>

#include "dk_acle.h"
#include "fixedpoint.h"

#if defined(__GNUC__)
#define DK_CONV_SPECIALISE DK_INLINE __attribute__((always_inline))
#else
#define DK_CONV_SPECIALISE static inline
#endif

/* int16 slack after the image: the inner loop reads taps in groups of 4, and the wide
 * layout widens whole groups of 4 */
#define DK_CONV1D_SLACK 8

DK_INLINE int32_t dk_conv1d_scratch_bytes_inline(const dk_conv1d_params *p)
{
    const int32_t cols = (p->block - 1) * p->stride + p->kernel;
    return (int32_t)sizeof(int16_t) * (cols * p->in_c + DK_CONV1D_SLACK);
}

/* Widen input columns [first, first + cols) into scratch, zeros outside the input. */
DK_INLINE void dk_conv1d_widen(const dk_conv1d_params *p, const int8_t *input, int32_t first, int32_t cols,
                  int16_t *scratch)
{
    const int32_t in_c = p->in_c;
    const int32_t offset = p->input_offset;
    int32_t col, i;
    for (col = 0; col < cols; ++col) {
        const int32_t x = first + col;
        int16_t *dst = scratch + col * in_c;
        if (x < 0 || x >= p->in_w) {
            memset(dst, 0, (size_t)in_c * sizeof(int16_t));
        } else {
            const int8_t *src = input + x * in_c;
            for (i = 0; i < in_c; ++i) {
                dst[i] = (int16_t)(src[i] + offset);
            }
        }
    }
    for (i = 0; i < DK_CONV1D_SLACK; ++i) {
        scratch[cols * in_c + i] = 0;
    }
}

/* One output channel's requantization, prepared once per block. */
typedef struct {
    dk_fast_rq fast;
    int32_t multiplier;
    int32_t shift;
    int32_t small;
} dk_c1_rq;

DK_INLINE dk_c1_rq dk_c1_conv_rq_make(int32_t multiplier, int32_t shift, int32_t small)
{
    dk_c1_rq q;
    q.fast = dk_fast_rq_make(multiplier, shift);
    q.multiplier = multiplier;
    q.shift = shift;
    q.small = small;
    return q;
}

DK_INLINE int8_t dk_c1_requant(int32_t acc, const dk_c1_rq *q, int32_t zp, int32_t lo, int32_t hi)
{
    const int32_t y = (q->small ? dk_fast_mbqm(acc, &q->fast)
                                : dk_mbqm(acc, q->multiplier, q->shift)) + zp;
    return (int8_t)dk_clamp8(y, lo, hi);
}

DK_INLINE uint32_t dk_c1_load32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

#if DK_USE_DSP
/* Four dot products: columns a, b (int16 image) x the channels of one packed pair.
 * aligned: both columns start on a word boundary, so each reads 4 taps with one LDRD. */
DK_INLINE void dk_c1_dot_2x2(const int16_t *xa, const int16_t *xb, const int8_t *w,
                           int32_t taps, int32_t aligned, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3];
    const void *wp = w, *pa = xa, *pb = xb;
    const int8_t *end = w + 2 * taps;
    if (aligned) {
        while ((const int8_t *)wp < end) {
            uint32_t w0, w1, x01, x23, w0_01, w1_01;
            dk_ldrd_inc(&wp, &w0, &w1);     /* 4 taps of each channel, stored t t+2 t+1 t+3 */
            w0_01 = dk_sxtb16(w0);
            w0 = dk_sxtb16_ror8(w0);
            w1_01 = dk_sxtb16(w1);
            w1 = dk_sxtb16_ror8(w1);
            dk_ldrd_inc(&pa, &x01, &x23);
            a0 = dk_smlad(x01, w0_01, a0);
            a1 = dk_smlad(x01, w1_01, a1);
            a0 = dk_smlad(x23, w0, a0);
            a1 = dk_smlad(x23, w1, a1);
            dk_ldrd_inc(&pb, &x01, &x23);
            b0 = dk_smlad(x01, w0_01, b0);
            b1 = dk_smlad(x01, w1_01, b1);
            b0 = dk_smlad(x23, w0, b0);
            b1 = dk_smlad(x23, w1, b1);
        }
    } else {
        while ((const int8_t *)wp < end) {
            uint32_t w0, w1, x01, x23, w0_01, w1_01;
            dk_ldrd_inc(&wp, &w0, &w1);
            w0_01 = dk_sxtb16(w0);
            w0 = dk_sxtb16_ror8(w0);
            w1_01 = dk_sxtb16(w1);
            w1 = dk_sxtb16_ror8(w1);
            x01 = dk_c1_load32(pa);
            x23 = dk_c1_load32((const int16_t *)pa + 2);
            pa = (const int16_t *)pa + 4;
            a0 = dk_smlad(x01, w0_01, a0);
            a1 = dk_smlad(x01, w1_01, a1);
            a0 = dk_smlad(x23, w0, a0);
            a1 = dk_smlad(x23, w1, a1);
            x01 = dk_c1_load32(pb);
            x23 = dk_c1_load32((const int16_t *)pb + 2);
            pb = (const int16_t *)pb + 4;
            b0 = dk_smlad(x01, w0_01, b0);
            b1 = dk_smlad(x01, w1_01, b1);
            b0 = dk_smlad(x23, w0, b0);
            b1 = dk_smlad(x23, w1, b1);
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = b0;
    acc[3] = b1;
}

DK_INLINE int32_t dk_c1_dot_1x2_tail(const int16_t *x, const int8_t *w, int32_t taps, int32_t *acc1)
{
    int32_t a0 = 0, a1 = 0;
    const int8_t *end = w + 2 * taps;
    while (w < end) {
        const uint32_t w0 = dk_c1_load32(w), w1 = dk_c1_load32(w + 4);
        const uint32_t x01 = dk_c1_load32(x), x23 = dk_c1_load32(x + 2);
        a0 = dk_smlad(x01, dk_sxtb16(w0), a0);
        a0 = dk_smlad(x23, dk_sxtb16_ror8(w0), a0);
        a1 = dk_smlad(x01, dk_sxtb16(w1), a1);
        a1 = dk_smlad(x23, dk_sxtb16_ror8(w1), a1);
        w += 8;
        x += 4;
    }
    *acc1 = a1;
    return a0;
}
#else
/* Packed position of tap t of channel j (0/1) within a pair's block. */
DK_INLINE int32_t dk_c1_packed_index(int32_t t, int32_t j)
{
    static const int8_t order[4] = {0, 2, 1, 3}; /* stored w0 w2 w1 w3 */
    return (t & ~3) * 2 + j * 4 + order[t & 3];
}

DK_INLINE void dk_c1_dot_2x2(const int16_t *xa, const int16_t *xb, const int8_t *w,
                           int32_t taps, int32_t aligned, int32_t acc[4])
{
    int32_t t;
    (void)aligned;
    for (t = 0; t < taps; ++t) {
        const int32_t w0 = w[dk_c1_packed_index(t, 0)];
        const int32_t w1 = w[dk_c1_packed_index(t, 1)];
        acc[0] += xa[t] * w0;
        acc[1] += xa[t] * w1;
        acc[2] += xb[t] * w0;
        acc[3] += xb[t] * w1;
    }
}

DK_INLINE int32_t dk_c1_dot_1x2_tail(const int16_t *x, const int8_t *w, int32_t taps, int32_t *acc1)
{
    int32_t t, a0 = 0, a1 = 0;
    for (t = 0; t < taps; ++t) {
        a0 += x[t] * w[dk_c1_packed_index(t, 0)];
        a1 += x[t] * w[dk_c1_packed_index(t, 1)];
    }
    *acc1 = a1;
    return a0;
}
#endif

/* The int16 image and weight layout of the fast variant (below): every column starts on a
 * group of 4 image elements (stride * in_c is a multiple of 4), and within each group the
 * order is t t+2 t+1 t+3, which is what SXTB16 / SXTB16 ROR 8 of a word of int8 input give. */
DK_INLINE void dk_c1f_store2(int16_t *dst, uint32_t lo, uint32_t hi)
{
    memcpy(dst, &lo, sizeof lo);
    memcpy(dst + 2, &hi, sizeof hi);
}

/*
 * The fast variant, for layers the generator proved three things about (codegen.conv1d_fast):
 * the layout above applies (stride * in_c is a multiple of 4), every accumulator is small
 * (dk_fast_mbqm is exact) and every channel's shift is <= -1 (so the left shift of
 * dk_fast_mbqm is 1 and the right shift e >= 1), with e <= 22. Then:
 *
 *  - the image holds the raw input, sign-extended to int16 (padding: the input zero point),
 *    and the generator folds input_offset * sum(w) into the bias, so widening is a load, two
 *    SXTB16 and a store per 4 elements;
 *  - the doubling of the accumulator is folded into the weights and the bias (both stored
 *    times 2), and the output zero point into the rounding constant (zp * 2^e is a multiple
 *    of 2^e);
 *  - SMMLAR adds that rounding constant for free, and the [t < 0] correction of the divide
 *    by 2^e uses the accumulator's sign instead of t's (they differ only when t = 0, which
 *    is not a tie for e >= 1; multipliers are >= 0), so an output costs SMMLAR,
 *    ADD (acc >> 31), ASR, SSAT, STRB.
 *
 * Each channel pair is one record of the packed array (int16 units, int32 fields):
 *     bias[2] (times 2, input offset folded in) | weights (2 * taps int16, times 2, wide
 *     layout: per group of 4 taps channel o's taps t t+2 t+1 t+3, then channel o+1's) |
 *     multiplier, rounding = 2^(e-1) + (zp << e), e of channel o | the same of channel o+1
 * built by codegen.pack_conv1d_fast; an odd last channel is paired with a zero channel.
 *
 * Size mode (p->weights8, firmware.optimize = "size"): the weights stay int8, half the flash.
 * Per group of 4 taps channel o's 4 bytes in tap order t t+1 t+2 t+3, then channel o+1's:
 * SXTB16 and SXTB16 ROR 8 of a word give (t, t+2) and (t+1, t+3), the image's order. The
 * doubling cannot go into int8 weights, so the bias is stored as is and the accumulator is
 * doubled before the requantization (one ADD per output; small accumulators keep it exact).
 *
 * On a core with the DSP extension the channel pairs x column pairs loops are assembly
 * (conv1d.c, dk_c1f_sweep: LDM of the 4 weight words, LDRD of each column's 4 taps, 8 SMLAD
 * per 4 taps); this is the C version of the same arithmetic (other cores, the host tests).
 */
#define DK_C1F_HEAD 4           /* int16 units before the weights */
#define DK_C1F_TAIL 12          /* int16 units after them */

/* int16 units of one record's weights, and of the whole record, for either kind of record */
DK_INLINE int32_t dk_c1f_weight_units(const dk_conv1d_params *p)
{
    return p->weights8 ? p->taps : 2 * p->taps;
}

DK_INLINE int32_t dk_c1f_record_units(const dk_conv1d_params *p)
{
    return DK_C1F_HEAD + dk_c1f_weight_units(p) + DK_C1F_TAIL;
}

#if DK_HAS_DSP && defined(__thumb2__)
#define DK_C1F_ASM 1
/* Columns [0, n) of the widened block x the full channel pairs (conv1d.c, assembly) */
void dk_c1f_sweep(const dk_conv1d_params *p, const int16_t *packed, const int16_t *image, int8_t *out,
                  int32_t n);
/* the same on int8-weight records (size mode) */
void dk_c1f_sweep8(const dk_conv1d_params *p, const int16_t *packed, const int16_t *image, int8_t *out,
                   int32_t n);

#define DK_C1F_STEP_BYTES 44    /* one step of dk_c1f_sweep's loop: 11 instructions of 4 bytes */
#define DK_C1F_STEP8_BYTES 60   /* dk_c1f_sweep8's: 15 (LDRD and 4 SXTB16 instead of the LDM) */

/* count x 16 input bytes from a word-aligned src to the image (conv1d.c) */
void dk_c1f_widen16(const int8_t *src, int16_t *dst, int32_t count);
#else
#define DK_C1F_ASM 0
#endif

/* One group of 4 image elements [idx, idx + 4) of the flat input, any of them padding. */
DK_INLINE void dk_c1f_widen_edge(const int8_t *input, int32_t idx, int32_t limit, int32_t zp,
                                 int16_t *dst)
{
    static const int8_t order[4] = {0, 2, 1, 3};
    int32_t e;
    for (e = 0; e < 4; ++e) {
        const int32_t i = idx + order[e];
        dst[e] = (int16_t)(i >= 0 && i < limit ? input[i] : zp);
    }
}

/* Groups [from, to) of the image starting at flat input index lo (the padding edges) */
DK_INLINE void dk_c1f_widen_edges(const int8_t *input, int32_t lo, int32_t limit, int32_t zp,
                                  int16_t *scratch, int32_t from, int32_t to)
{
    int32_t g;
    for (g = from; g < to; ++g) {
        dk_c1f_widen_edge(input, lo + 4 * g, limit, zp, scratch + 4 * g);
    }
}

/* Input columns [first, first + cols) as the raw int16 image, the padding as the zero point. */
DK_INLINE void dk_c1f_widen(const dk_conv1d_params *p, const int8_t *input, int32_t first, int32_t cols,
                            int16_t *scratch)
{
    const int32_t in_c = p->in_c;
    const int32_t zp = -p->input_offset;
    const int32_t limit = p->in_w * in_c;
    const int32_t lo = first * in_c;
    const int32_t groups = (cols * in_c + 3) >> 2;
    /* groups [g0, g1) lie wholly inside the input */
    int32_t g0 = lo >= 0 ? 0 : (-lo + 3) >> 2;
    int32_t g1 = (limit - lo) >> 2;
    if (g1 > groups) {
        g1 = groups;
    }
    if (g0 > g1) {
        g0 = g1;
    }
    if (g0 > 0) {
        dk_c1f_widen_edges(input, lo, limit, zp, scratch, 0, g0);
    }
    {   /* two groups per pass: 2 LDR, 4 SXTB16, 2 STRD */
        const int8_t *src = input + lo + 4 * g0;
        void *dst = scratch + 4 * g0;
        int32_t k = g1 - g0;
#if DK_C1F_ASM
        if (k >= 4 && ((uintptr_t)src & 3) == 0) {   /* 4 groups: LDM, 8 SXTB16, STM */
            dk_c1f_widen16(src, (int16_t *)dst, k >> 2);
            src += 16 * (k >> 2);
            dst = (int16_t *)dst + 16 * (k >> 2);
            k &= 3;
        }
#endif
        if (k & 1) {
            const uint32_t v = dk_c1_load32(src);
            dk_strd_inc(&dst, dk_sxtb16(v), dk_sxtb16_ror8(v));
            src += 4;
        }
        for (k >>= 1; k > 0; --k) {
            const uint32_t v0 = dk_c1_load32(src), v1 = dk_c1_load32(src + 4);
            dk_strd_inc(&dst, dk_sxtb16(v0), dk_sxtb16_ror8(v0));
            dk_strd_inc(&dst, dk_sxtb16(v1), dk_sxtb16_ror8(v1));
            src += 8;
        }
    }
    if (g1 < groups) {
        dk_c1f_widen_edges(input, lo, limit, zp, scratch, g1, groups);
    }
    dk_c1f_store2(scratch + 4 * groups, 0, 0);
}

/* One output from its accumulator and its channel's multiplier, rounding, e (rq) */
DK_INLINE int8_t dk_c1f_out(int32_t acc, const int16_t *rq, int32_t lo, int32_t hi)
{
    const int32_t m = (int32_t)dk_c1_load32(rq);
    const int32_t rnd = (int32_t)dk_c1_load32(rq + 2);
    const int32_t e = (int32_t)dk_c1_load32(rq + 4);
    const int32_t u = (int32_t)((uint32_t)dk_smmlar(acc, m, rnd) + (uint32_t)(acc >> 31));
    return (int8_t)dk_clamp8(u >> e, lo, hi);
}

/* The two channels of record rec over one column of the image (x), as the requantization
 * takes them (doubled); arithmetic mod 2^32 like SMLAD's (partial sums may leave int32; the
 * final accumulators do not). w8: an int8-weight record (size mode). */
DK_INLINE void dk_c1f_dot(const int16_t *rec, const int16_t *x, int32_t taps, int32_t w8, int32_t acc[2])
{
    uint32_t a0 = dk_c1_load32(rec), a1 = dk_c1_load32(rec + 2);
    int32_t t;
    if (w8) {
        /* image position e of a group holds tap order[e]; the bytes are in tap order */
        static const int8_t order[4] = {0, 2, 1, 3};
        const int8_t *w = (const int8_t *)(rec + DK_C1F_HEAD);
        for (t = 0; t < taps; ++t) {
            const int32_t i = (t & ~3) * 2 + order[t & 3];
            a0 += (uint32_t)(x[t] * w[i]);
            a1 += (uint32_t)(x[t] * w[i + 4]);
        }
        a0 *= 2u;
        a1 *= 2u;
    } else {
        const int16_t *w = rec + DK_C1F_HEAD;
        for (t = 0; t < taps; ++t) {   /* image and weights share the order within a group */
            const int32_t i = (t & ~3) * 2 + (t & 3);
            a0 += (uint32_t)(x[t] * w[i]);
            a1 += (uint32_t)(x[t] * w[i + 4]);
        }
    }
    acc[0] = (int32_t)a0;
    acc[1] = (int32_t)a1;
}

/* Columns [0, n) of the widened block, channel pairs [pair0, pair1) (an odd last channel:
 * the pair whose second channel is padding, stored without it) */
DK_INLINE void dk_c1f_block_c(const dk_conv1d_params *p, const int16_t *packed, const int16_t *scratch,
                              int32_t n, int32_t pair0, int32_t pair1, int8_t *out)
{
    const int32_t out_c = p->out_c;
    const int32_t taps = p->taps;
    const int32_t col_step = p->stride * p->in_c;
    const int32_t lo = p->activation.min, hi = p->activation.max;
    const int32_t record = dk_c1f_record_units(p);
    int32_t j, o;
    for (j = 0; j < n; ++j) {
        const int16_t *rec = packed + pair0 * record;
        for (o = 2 * pair0; o < 2 * pair1; o += 2) {
            const int16_t *rq = rec + DK_C1F_HEAD + dk_c1f_weight_units(p);
            int32_t acc[2];
            dk_c1f_dot(rec, scratch + j * col_step, taps, p->weights8, acc);
            out[j * out_c + o] = dk_c1f_out(acc[0], rq, lo, hi);
            if (o + 1 < out_c) {
                out[j * out_c + o + 1] = dk_c1f_out(acc[1], rq + 6, lo, hi);
            }
            rec += record;
        }
    }
}

/* The C version of dk_conv1d_s8_fast (conv1d.c): p as for dk_conv1d_s8, packed by
 * codegen.pack_conv1d_fast */
DK_INLINE void dk_conv1d_s8_fast_c(const dk_conv1d_params *p, const int8_t *input, const int16_t *packed,
                                   int16_t *scratch, int8_t *output)
{
    int32_t x0;
    for (x0 = 0; x0 < p->out_w; x0 += p->block) {
        const int32_t n = p->out_w - x0 < p->block ? p->out_w - x0 : p->block;
        dk_c1f_widen(p, input, x0 * p->stride - p->pad, (n - 1) * p->stride + p->kernel, scratch);
        dk_c1f_block_c(p, packed, scratch, n, 0, (p->out_c + 1) >> 1, output + x0 * p->out_c);
    }
}

DK_CONV_SPECIALISE void dk_conv1d_s8_inline(const dk_conv1d_params *p, const dk_channel_requant *quant,
                  const int8_t *input, const int8_t *packed_filter, const int32_t *bias,
                  int16_t *scratch, int8_t *output)
{
    const int32_t in_c = p->in_c;
    const int32_t out_c = p->out_c;
    const int32_t stride = p->stride;
    const int32_t taps = p->taps;
    const int32_t col_step = stride * in_c;
    const int32_t zp = p->output_offset;
    const int32_t lo = p->activation.min, hi = p->activation.max;
    const int32_t aligned = (col_step & 1) == 0;   /* int16 columns start on words */
    int32_t x0, o;

    for (x0 = 0; x0 < p->out_w; x0 += p->block) {
        const int32_t n = p->out_w - x0 < p->block ? p->out_w - x0 : p->block;
        const int32_t first = x0 * stride - p->pad;
        int32_t j;
        dk_conv1d_widen(p, input, first, (n - 1) * stride + p->kernel, scratch);
        for (o = 0; o < out_c; o += 2) {
            const int8_t *w = packed_filter + o * taps;   /* pair o/2: 2 * taps bytes */
            const int32_t two = o + 1 < out_c;
            const int32_t q0 = quant->per_channel ? o : 0;
            const int32_t q1 = quant->per_channel ? o + two : 0;
            const dk_c1_rq r0 = dk_c1_conv_rq_make(quant->multiplier[q0], quant->shift[q0], p->small_acc);
            const dk_c1_rq r1 = dk_c1_conv_rq_make(quant->multiplier[q1], quant->shift[q1], p->small_acc);
            const int32_t b0 = bias ? bias[o] : 0;
            const int32_t b1 = bias && two ? bias[o + 1] : 0;
            int8_t *out = output + x0 * out_c + o;
            for (j = 0; j + 1 < n; j += 2) {
                int32_t acc[4] = {b0, b1, b0, b1};
                dk_c1_dot_2x2(scratch + j * col_step, scratch + (j + 1) * col_step, w, taps, aligned, acc);
                out[0] = dk_c1_requant(acc[0], &r0, zp, lo, hi);
                out[out_c] = dk_c1_requant(acc[2], &r0, zp, lo, hi);
                if (two) {
                    out[1] = dk_c1_requant(acc[1], &r1, zp, lo, hi);
                    out[out_c + 1] = dk_c1_requant(acc[3], &r1, zp, lo, hi);
                }
                out += 2 * out_c;
            }
            if (j < n) {
                int32_t a1;
                const int32_t a0 = dk_c1_dot_1x2_tail(scratch + j * col_step, w, taps, &a1);
                out[0] = dk_c1_requant(dk_wrap_add(a0, b0), &r0, zp, lo, hi);
                if (two) {
                    out[1] = dk_c1_requant(dk_wrap_add(a1, b1), &r1, zp, lo, hi);
                }
            }
        }
    }
}

#endif /* DK_CONV1D_H */
