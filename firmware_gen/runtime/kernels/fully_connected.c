/*
 * fully_connected.c - FULLY_CONNECTED (int8 weights, int32 bias).
 *
 * Per-tensor and per-channel weight quantization differ only in which
 * requantization each output channel uses.
 *
 * dk_fully_connected_s8_fast (end of file): one input row against dk_conv1d_s8_fast's packed
 * records (ops/fully_connected.py chooses it), one column x one channel pair at a time.
 */
#include "conv1d.h"
#include "fixedpoint.h"
#include "fully_connected_mve.h"   /* Helium variant (DK_USE_MVE) */

void dk_fully_connected_s8(const dk_fc_params *params,
                           const dk_channel_requant *quant,
                           int32_t batches, int32_t accum_depth,
                           int32_t out_depth,
                           const int8_t *input, const int8_t *weights,
                           const int32_t *bias, int8_t *output)
{
    const int32_t input_offset = params->input_offset;
    const int32_t filter_offset = params->filter_offset;
    int32_t b, o, d;
#if DK_USE_MVE
    dk_fully_connected_s8_mve(params, quant, batches, accum_depth, out_depth, input, weights, bias, output);
    return;
#endif
    for (b = 0; b < batches; ++b) {
        const int8_t *x = input + b * accum_depth;
        for (o = 0; o < out_depth; ++o) {
            const int8_t *w = weights + o * accum_depth;
            const int32_t q = quant->per_channel ? o : 0;
            int32_t acc = 0;
            int32_t y;
            for (d = 0; d < accum_depth; ++d) {
                acc += (w[d] + filter_offset) * (x[d] + input_offset);
            }
            if (bias) {
                acc = dk_wrap_add(acc, bias[o]);
            }
            y = dk_mbqm(acc, quant->multiplier[q], quant->shift[q]) +
                params->output_offset;
            *output++ = (int8_t)dk_clamp(y, params->activation.min,
                                         params->activation.max);
        }
    }
}

#if DK_USE_MVE
/* the dot products are Helium's (fully_connected_mve.h) */
#elif DK_C1F_ASM
/* 4 taps of the column against both channels of a record: one LDM of the record's 4 weight
 * words (r4-r7: channel o's (t, t+2) (t+1, t+3), then o+1's), one LDRD of the image's 4 taps
 * (same order), 4 SMLAD: 6 instructions for 8 MACs. Size mode (int8 weights): an LDRD of
 * the 8 weight bytes and 4 SXTB16 fill r4-r7 instead: 10 instructions. */
#define DK_FC_W16 "ldmia   %[w]!, {r4, r5, r6, r7}\n\t"
#define DK_FC_W8                                \
    "ldrd    r4, r6, [%[w]], #8\n\t"            \
    "sxtb16  r5, r4, ror #8\n\t"                \
    "sxtb16  r4, r4\n\t"                        \
    "sxtb16  r7, r6, ror #8\n\t"                \
    "sxtb16  r6, r6\n\t"
#define DK_FC_STEP(W)                           \
    W                                           \
    "ldrd    %[x0], %[x1], [%[x]], #8\n\t"      \
    "smlad   %[a0], %[x0], r4, %[a0]\n\t"       \
    "smlad   %[a1], %[x0], r6, %[a1]\n\t"       \
    "smlad   %[a0], %[x1], r5, %[a0]\n\t"       \
    "smlad   %[a1], %[x1], r7, %[a1]\n\t"

#define DK_FC_LOOP(W)                                                                           \
    __asm__ volatile(                                                                           \
        "cmp     %[n4], #0\n\t"                                                                 \
        "beq     2f\n"                                                                          \
        "1:\n\t"                                                                                \
        DK_FC_STEP(W) DK_FC_STEP(W) DK_FC_STEP(W) DK_FC_STEP(W)                                 \
        "subs    %[n4], %[n4], #1\n\t"                                                          \
        "bne     1b\n"                                                                          \
        "2:\n\t"                                                                                \
        "cmp     %[n1], #0\n\t"                                                                 \
        "beq     4f\n"                                                                          \
        "3:\n\t"                                                                                \
        DK_FC_STEP(W)                                                                           \
        "subs    %[n1], %[n1], #1\n\t"                                                          \
        "bne     3b\n"                                                                          \
        "4:\n\t"                                                                                \
        : [a0] "+r"(a0), [a1] "+r"(a1), [w] "+r"(w), [x] "+r"(x), [n4] "+r"(n4), [n1] "+r"(n1), \
          [x0] "=&r"(x0), [x1] "=&r"(x1)                                                        \
        :                                                                                       \
        : "r4", "r5", "r6", "r7", "cc", "memory")

/* The two accumulators of one record (from its bias) over taps / 4 steps of the image x, as
 * the requantization takes them (doubled). Out of line: the loop needs 12 registers. */
__attribute__((noinline)) static void dk_fc_dot(const int16_t *rec, const int16_t *x, int32_t steps, int32_t w8, int32_t acc[2])
{
    const int16_t *w = rec + DK_C1F_HEAD;
    int32_t a0 = (int32_t)dk_c1_load32(rec), a1 = (int32_t)dk_c1_load32(rec + 2);
    int32_t n4 = steps >> 2, n1 = steps & 3;
    uint32_t x0, x1;
    if (w8) {
        DK_FC_LOOP(DK_FC_W8);
        a0 = (int32_t)((uint32_t)a0 * 2u);
        a1 = (int32_t)((uint32_t)a1 * 2u);
    } else {
        DK_FC_LOOP(DK_FC_W16);
    }
    acc[0] = a0;
    acc[1] = a1;
}
#else
static void dk_fc_dot(const int16_t *rec, const int16_t *x, int32_t steps, int32_t w8, int32_t acc[2])
{
    dk_c1f_dot(rec, x, 4 * steps, w8, acc);
}
#endif

void dk_fully_connected_s8_fast(const dk_conv1d_params *p, const int8_t *input, const int16_t *packed,
                                int16_t *scratch, int8_t *output)
{
    const int32_t taps = p->taps;
    const int32_t record = dk_c1f_record_units(p);
    const int32_t lo = p->activation.min, hi = p->activation.max;
    const int16_t *rec = packed;
    int32_t o;
    dk_c1f_widen(p, input, 0, 1, scratch);
    for (o = 0; o < p->out_c; o += 2) {
        const int16_t *rq = rec + DK_C1F_HEAD + dk_c1f_weight_units(p);
        int32_t acc[2];
#if DK_USE_MVE
        if (p->weights8) {   /* Helium: fully_connected_mve.h */
            dk_fc_dot8_mve(rec, scratch, taps, acc);
        } else {
            dk_fc_dot_mve(rec, scratch, taps, acc);
        }
#else
        dk_fc_dot(rec, scratch, taps >> 2, p->weights8, acc);
#endif
        output[o] = dk_c1f_out(acc[0], rq, lo, hi);
        if (o + 1 < p->out_c) {
            output[o + 1] = dk_c1f_out(acc[1], rq + 6, lo, hi);
        }
        rec += record;
    }
}
