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
 *
 * That intrinsics version serves the layers with an odd out_c or a narrower clamp; the
 * others (the DRSN's) take the hand-scheduled assembly sweep further down.
 *
 * Size-mode records (p->weights8, int8 weights in tap order, bias not doubled) take the same
 * paths with VLDRB.S16 gathers for the weights (byte offsets that put them in the image's
 * order) and the sums doubled, or in the sweep not halved, before the same requantization.
 */
#ifndef DK_CONV1D_MVE_H
#define DK_CONV1D_MVE_H

#include "conv1d.h"
#include "dk_mve.h"

#if DK_USE_MVE

/* 8 weights of one channel, `byte` bytes into the record's weights: int16 records gather
 * halfwords at the offsets, int8 ones (size mode) sign-extending bytes; the _z form loads the
 * lanes of p only (the others read as zero) */
DK_INLINE int16x8_t dk_c1f_mve_weights(const int16_t *w, int32_t byte, uint16x8_t off, int32_t w8)
{
    const int8_t *base = (const int8_t *)w + byte;
    return w8 ? vldrbq_gather_offset_s16(base, off)
              : vldrhq_gather_shifted_offset_s16((const int16_t *)base, off);
}

DK_INLINE int16x8_t dk_c1f_mve_weights_z(const int16_t *w, int32_t byte, uint16x8_t off, int32_t w8,
                                         mve_pred16_t p)
{
    const int8_t *base = (const int8_t *)w + byte;
    return w8 ? vldrbq_gather_offset_z_s16(base, off, p)
              : vldrhq_gather_shifted_offset_z_s16((const int16_t *)base, off, p);
}

/* rec's channel pair over 4 image columns x0..x3: acc[c][k] for channel o + c, column k, as
 * the requantization takes them. w8: an int8-weight record (size mode): the weight gathers are
 * bytes in the image's order (position e of a group of 4 holds tap {0, 2, 1, 3}[e]; a group of
 * the record is channel o's 4 bytes in tap order, then o+1's), and the sums are doubled at the
 * end, since that record's bias and weights are not. */
DK_INLINE void dk_c1f_mve_dot(const int16_t *rec, const int16_t *x0, const int16_t *x1, const int16_t *x2,
                              const int16_t *x3, int32_t taps, int32_t w8, int32_t acc[2][4])
{
    static const uint16_t halves[8] = {0, 1, 2, 3, 8, 9, 10, 11};   /* int16 records */
    static const uint16_t bytes[8] = {0, 2, 1, 3, 8, 10, 9, 11};    /* int8 records */
    const uint16x8_t off0 = vld1q_u16(w8 ? bytes : halves);
    const uint16x8_t off1 = vaddq_n_u16(off0, 4);
    const int32_t step = w8 ? 16 : 32;   /* record bytes per 8 taps of the pair */
    const int16_t *w = rec + DK_C1F_HEAD;
    int32_t a0 = (int32_t)dk_c1_load32(rec), a1 = (int32_t)dk_c1_load32(rec + 2);
    int32_t b0 = a0, c0 = a0, d0 = a0, b1 = a1, c1 = a1, d1 = a1;
    int32_t s, k, byte = 0;
    for (s = taps >> 3; s > 0; --s) {
        const int16x8_t w0 = dk_c1f_mve_weights(w, byte, off0, w8);
        const int16x8_t w1 = dk_c1f_mve_weights(w, byte, off1, w8);
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
        byte += step;
        x0 += 8;
        x1 += 8;
        x2 += 8;
        x3 += 8;
    }
    if (taps & 4) {   /* the last group of 4: lanes 4..7 load as zero */
        const mve_pred16_t p = vctp16q(4);
        const int16x8_t w0 = dk_c1f_mve_weights_z(w, byte, off0, w8, p);
        const int16x8_t w1 = dk_c1f_mve_weights_z(w, byte, off1, w8, p);
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
    if (w8) {
        for (k = 0; k < 4; ++k) {   /* mod 2^32, like the sums */
            acc[0][k] = (int32_t)((uint32_t)acc[0][k] * 2u);
            acc[1][k] = (int32_t)((uint32_t)acc[1][k] * 2u);
        }
    }
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
    const int32_t record = dk_c1f_record_units(p);
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
            const int16_t *rq = rec + DK_C1F_HEAD + dk_c1f_weight_units(p);
            if (p->weights8) {   /* a constant w8 in each call: two specialised loops */
                dk_c1f_mve_dot(rec, x0, x0 + c1 * col_step, x0 + c2 * col_step, x0 + c3 * col_step, taps, 1, acc);
            } else {
                dk_c1f_mve_dot(rec, x0, x0 + c1 * col_step, x0 + c2 * col_step, x0 + c3 * col_step, taps, 0, acc);
            }
            dk_c1f_mve_out(acc[0], rq, lo, hi, o, offsets);
            if (2 * pr + 1 < out_c) {
                dk_c1f_mve_out(acc[1], rq + 6, lo, hi, o + 1, offsets);
            }
            o += 2;
            rec += record;
        }
    }
}

/*
 * The hand-scheduled sweep (dk_c1f_mve_quad): 4 columns x every channel pair of a layer whose
 * out_c is even and whose activation is the whole int8 range (the others take
 * dk_c1f_mve_block above). gcc spills the 8 VMLADAVA accumulators of the intrinsics version
 * (their registers must be even); here they stay in r0 r2 ... r12 lr for the whole pass.
 *
 * Registers in the dot product:
 *   r0 r4 r8 r12   channel o, columns 0..3      r2 r6 r10 lr   channel o+1
 *   r3 r5 r7 r9    the 4 columns' image (VLDRH, writeback)      r11 end of column 0's image
 *   r1             the record
 *   q4             gather base: per lane one word (2 taps) of channel o, words 0, 1 and 4, 5
 *                  of a step's 16 (o+1's are 2, 3 and 6, 7: the same base + 8); a VLDRW
 *                  gather with writeback for o, one at + 8 without for o+1, so the weights
 *                  need no pointer arithmetic
 *   q5             the scatter offsets of the outputs     q6  q4's start less the record's address
 * A step of 8 taps: 2 gathers, 4 VLDRH, 8 VMLADAVA (64 MACs in 14 instructions). The first
 * step (VMLADAV, no accumulate: the bias comes later) is 8 taps, or 4 when taps % 8 == 4
 * (gathers predicated to 2 lanes, so the image's other 4 lanes meet zero weights); the rest
 * are 8-tap steps, 8 per loop pass, entered part-way (Duff style, one LDR PC).
 *
 * Requantization of the pass's 8 outputs (two STM and two VLDRW put them into lanes):
 *     a = (acc + bias) / 2          VHADD: the record doubles weights and bias, so exact
 *                                   (size mode: a = acc + bias, VADD; nothing is doubled)
 *     t = (a >> 31) + rnd + VQRDMLAH(a, m)    = SMMLAR(2a, m, rnd) + sign, as conv1d.h
 *     y = t >> e                    VSHL by -e (flooring, like ASR; no VRSHL, see dk_mve.h)
 * then VQMOVNB/VQMOVNT narrow both channels into one vector of int16 (o in the even lanes),
 * VQMOVNB.S16 saturates to int8 (the clamp), and one VSTRB.16 scatter stores the 8 bytes.
 *
 * Stack frame (the job, copied; dk_c1f_mve_job):
 *   0..12 the 4 columns' image   16 end of column 0's   20 weight bytes   24 first step (address)
 *   28 loop entry (address)      32 out   36 end of the records   40 the first record
 *   44 quads left   48 x_step   52 out_step   56..87 the accumulators on their way to q0, q1
 * After the last channel pair the next quad's columns are 4 further: a job of quads > 1
 * sweeps them all without coming back to C.
 */
typedef struct {
    const int16_t *x[4];
    const int16_t *x_end;
    int32_t weight_bytes;
    int32_t first;      /* byte offset of the first step from the 8-tap one */
    int32_t entry;      /* byte offset of the loop entry from the loop's start */
    int8_t *out;
    const int16_t *rec_end;
    const int16_t *rec;
    int32_t quads;      /* passes over 4 columns */
    uint16_t offsets[8];
    union {
        int32_t base[4];        /* gather bases less the record's address */
        uint16_t bytes[8];      /* size mode: channel o's byte offsets in 8 taps */
    } gather;
    int32_t x_step;     /* bytes from a quad's image to the next quad's */
    int32_t out_step;   /* from the end of a quad's outputs to the next quad's */
} dk_c1f_mve_job;

#define DK_C1F_MVE_F4 60        /* the 4-tap first step, after the 8-tap one (15 instructions) */
#define DK_C1F_MVE_STEP 56      /* a loop step: 14 instructions of 4 bytes */
#define DK_C1F_MVE8_F4 64       /* dk_c1f_mve_quad8's: one ADD more in each */
#define DK_C1F_MVE8_STEP 60

#define DK_C1F_MVE_MACS(op, inc)                \
    "vldrh.u16 q2, [r3], #" inc "\n\t"          \
    op ".s16 r0, q2, q0\n\t"                    \
    op ".s16 r2, q2, q1\n\t"                    \
    "vldrh.u16 q3, [r5], #" inc "\n\t"          \
    op ".s16 r4, q3, q0\n\t"                    \
    op ".s16 r6, q3, q1\n\t"                    \
    "vldrh.u16 q2, [r7], #" inc "\n\t"          \
    op ".s16 r8, q2, q0\n\t"                    \
    op ".s16 r10, q2, q1\n\t"                   \
    "vldrh.u16 q3, [r9], #" inc "\n\t"          \
    op ".s16 r12, q3, q0\n\t"                   \
    op ".s16 lr, q3, q1\n\t"
#define DK_MVE_STR_(x) #x
#define DK_MVE_STR(x) DK_MVE_STR_(x)

/* What differs between the two kinds of record. Speed (int16 weights, times 2): q4 the gather
 * base vector (from q6 per channel pair), walked by the gather's writeback. Size (int8): r1
 * walks the weights, q4 / q6 are constant byte offsets for channel o / o+1 (VLDRB.S16
 * gathers, so an ADD per step walks r1), and r1 ends on the requantization words, the bias
 * is 2 * taps + 8 bytes back. */
#define DK_C1F_MVE16_INIT "vldrw.u32 q6, [r0, #16]\n\t"          /* gather bases */
#define DK_C1F_MVE16_PAIR "vadd.i32 q4, q6, r1\n\t"
#define DK_C1F_MVE16_W8                                           \
    "vldrw.u32 q0, [q4, #32]!\n\t"                                \
    "vldrw.u32 q1, [q4, #8]\n\t"
#define DK_C1F_MVE16_W4                                           \
    "vpstt\n\t"                                                   \
    "vldrwt.u32 q0, [q4, #16]\n\t"                                \
    "vldrwt.u32 q1, [q4, #24]\n\t"
#define DK_C1F_MVE16_BIAS                                         \
    "ldrd    r0, r2, [r1], #8\n\t"      /* the biases; r1: the weights */   \
    "ldr     r4, [sp, #20]\n\t"                                   \
    "add     r1, r1, r4\n\t"
/* the record doubles weights and bias, so (acc + bias) / 2 is exact */
#define DK_C1F_MVE16_SUM                                          \
    "vhadd.s32 q0, q0, r0\n\t"                                    \
    "vhadd.s32 q1, q1, r2\n\t"

#define DK_C1F_MVE8_INIT                                          \
    "vldrw.u32 q4, [r0, #16]\n\t"       /* byte offsets of channel o */     \
    "movs    r2, #4\n\t"                                          \
    "vadd.i16 q6, q4, r2\n\t"           /* of o+1 */
#define DK_C1F_MVE8_PAIR "add.w   r1, r1, #8\n\t"
#define DK_C1F_MVE8_W8                                            \
    "vldrb.s16 q0, [r1, q4]\n\t"                                  \
    "vldrb.s16 q1, [r1, q6]\n\t"                                  \
    "add.w   r1, r1, #16\n\t"
/* P0 (0xff) is 16-bit lanes 0..3 here: the other 4 weights load as zero */
#define DK_C1F_MVE8_W4                                            \
    "vpstt\n\t"                                                   \
    "vldrbt.s16 q0, [r1, q4]\n\t"                                 \
    "vldrbt.s16 q1, [r1, q6]\n\t"                                 \
    "add.w   r1, r1, #8\n\t"
#define DK_C1F_MVE8_BIAS                                          \
    "ldr     r4, [sp, #20]\n\t"                                   \
    "sub     r0, r1, r4\n\t"                                      \
    "ldrd    r0, r2, [r0, #-8]\n\t"
#define DK_C1F_MVE8_SUM                                           \
    "vadd.i32 q0, q0, r0\n\t"                                     \
    "vadd.i32 q1, q1, r2\n\t"

#define DK_C1F_MVE_QUAD(K, F4, STEP)                                                            \
        "push    {r4-r11, lr}\n\t"                                                              \
        "vpush   {d8-d13}\n\t"                 /* q4-q6 are the caller's */                     \
        "sub     sp, #88\n\t"                                                                   \
        "ldmia   r0!, {r1-r12}\n\t"                                                             \
        "stm     sp, {r1-r12}\n\t"                                                              \
        "ldrd    r2, r3, [r0, #32]\n\t"                                                         \
        "strd    r2, r3, [sp, #48]\n\t"                                                         \
        "vldrw.u32 q5, [r0]\n\t"                /* scatter offsets */                           \
        K##_INIT                                                                                \
        "movs    r2, #0xff\n\t"                 /* P0: bytes 0..7 (the 4-tap step) */          \
        "vmsr    p0, r2\n\t"                                                                    \
        "adr     r2, 5f\n\t"                                                                    \
        "add     r7, r7, r2\n\t"                                                                \
        "orr     r7, r7, #1\n\t"                                                                \
        "adr     r2, 3f\n\t"                                                                    \
        "add     r8, r8, r2\n\t"                                                                \
        "orr     r8, r8, #1\n\t"                                                                \
        "strd    r7, r8, [sp, #24]\n\t"                                                         \
        "mov     r1, r11\n"                     /* the first record */                          \
        "2:\n\t"                                /* channel pair */                              \
        "ldm     sp, {r3, r5, r7, r9, r11}\n\t"                                                 \
        K##_PAIR                                                                                \
        "ldr     pc, [sp, #24]\n\t"                                                             \
        ".p2align 2\n"                                                                          \
        "5:\n\t"                                /* first step: 8 taps */                        \
        K##_W8                                                                                  \
        DK_C1F_MVE_MACS("vmladav", "16")                                                        \
        "ldr     pc, [sp, #28]\n"                                                               \
        "6:\n\t"                                /* or 4 taps */                                 \
        ".if (6b - 5b) != " DK_MVE_STR(F4) "\n\t"                                               \
        ".error \"dk_c1f_mve_quad: the 8-tap first step is not " #F4 " long\"\n\t"              \
        ".endif\n\t"                                                                            \
        K##_W4                                                                                  \
        DK_C1F_MVE_MACS("vmladav", "8")                                                         \
        "ldr     pc, [sp, #28]\n\t"                                                             \
        ".p2align 2\n"                                                                          \
        "3:\n\t"                                                                                \
        K##_W8 DK_C1F_MVE_MACS("vmladava", "16") K##_W8 DK_C1F_MVE_MACS("vmladava", "16")       \
        K##_W8 DK_C1F_MVE_MACS("vmladava", "16") K##_W8 DK_C1F_MVE_MACS("vmladava", "16")       \
        K##_W8 DK_C1F_MVE_MACS("vmladava", "16") K##_W8 DK_C1F_MVE_MACS("vmladava", "16")       \
        K##_W8 DK_C1F_MVE_MACS("vmladava", "16") K##_W8 DK_C1F_MVE_MACS("vmladava", "16")       \
        "4:\n\t"                                                                                \
        ".if (4b - 3b) != 8 * " DK_MVE_STR(STEP) "\n\t"                                         \
        ".error \"dk_c1f_mve_quad: a loop step is not " #STEP " long\"\n\t"                     \
        ".endif\n\t"                                                                            \
        "cmp     r3, r11\n\t"                                                                   \
        "bne     3b\n\t"                                                                        \
        /* the accumulators into lanes through the stack: STM stores in register order, so    \
         * lanes 0..3 are columns 0..3 (the two-lane VMOV's operand order is read one way by   \
         * the assemblers and the other by QEMU 7.2; this does not depend on it) */            \
        "add     r3, sp, #56\n\t"                                                               \
        "stm     r3!, {r0, r4, r8, r12}\n\t"                                                    \
        "stm     r3, {r2, r6, r10, lr}\n\t"                                                     \
        "vldrw.u32 q0, [sp, #56]\n\t"                                                           \
        "vldrw.u32 q1, [sp, #72]\n\t"                                                           \
        K##_BIAS                                                                                \
        "ldmia   r1!, {r4, r5, r6, r7, r8, r9}\n\t"   /* m rnd e of o, of o+1; r1: next record */ \
        K##_SUM                                                                                 \
        "vshr.s32 q3, q0, #31\n\t"                                                              \
        "vshr.s32 q2, q1, #31\n\t"                                                              \
        "vadd.i32 q3, q3, r5\n\t"                                                               \
        "vadd.i32 q2, q2, r8\n\t"                                                               \
        "vqrdmlah.s32 q3, q0, r4\n\t"                                                           \
        "vqrdmlah.s32 q2, q1, r7\n\t"                                                           \
        "rsb     r6, r6, #0\n\t"                                                                \
        "rsb     r9, r9, #0\n\t"                                                                \
        "vshl.s32 q3, r6\n\t"                                                                   \
        "vshl.s32 q2, r9\n\t"                                                                   \
        "vqmovnb.s32 q0, q3\n\t"                                                                \
        "vqmovnt.s32 q0, q2\n\t"                                                                \
        "vqmovnb.s16 q0, q0\n\t"                                                                \
        "ldrd    r0, r2, [sp, #32]\n\t"         /* out, end of the records */                   \
        "vstrb.16 q0, [r0, q5]\n\t"                                                             \
        "adds    r0, r0, #2\n\t"                                                                \
        "str     r0, [sp, #32]\n\t"                                                             \
        "cmp     r1, r2\n\t"                                                                    \
        "bne     2b\n\t"                                                                        \
        "ldr     r0, [sp, #44]\n\t"           /* next quad */                                   \
        "subs    r0, r0, #1\n\t"                                                                \
        "beq     9f\n\t"                                                                        \
        "str     r0, [sp, #44]\n\t"                                                             \
        "ldm     sp, {r2, r3, r4, r5, r6}\n\t"                                                  \
        "ldrd    r7, r8, [sp, #48]\n\t"                                                         \
        "add     r2, r2, r7\n\t"                                                                \
        "add     r3, r3, r7\n\t"                                                                \
        "add     r4, r4, r7\n\t"                                                                \
        "add     r5, r5, r7\n\t"                                                                \
        "add     r6, r6, r7\n\t"                                                                \
        "stm     sp, {r2, r3, r4, r5, r6}\n\t"                                                  \
        "ldr     r0, [sp, #32]\n\t"                                                             \
        "add     r0, r0, r8\n\t"                                                                \
        "str     r0, [sp, #32]\n\t"                                                             \
        "ldr     r1, [sp, #40]\n\t"                                                             \
        "b       2b\n"                                                                          \
        "9:\n\t"                                                                                \
        "add     sp, #88\n\t"                                                                   \
        "vpop    {d8-d13}\n\t"                                                                  \
        "pop     {r4-r11, pc}\n\t"

__attribute__((naked, noinline)) static void dk_c1f_mve_quad(const dk_c1f_mve_job *job __attribute__((unused)))
{
    __asm__ volatile(DK_C1F_MVE_QUAD(DK_C1F_MVE16, DK_C1F_MVE_F4, DK_C1F_MVE_STEP));
}

/* the same on int8-weight records (size mode): 15 instructions per 8 taps instead of 14 */
__attribute__((naked, noinline)) static void dk_c1f_mve_quad8(const dk_c1f_mve_job *job __attribute__((unused)))
{
    __asm__ volatile(DK_C1F_MVE_QUAD(DK_C1F_MVE8, DK_C1F_MVE8_F4, DK_C1F_MVE8_STEP));
}

/* A job for dk_c1f_mve_quad over image columns [0, cols) (cols <= 4: a last quad repeats its
 * last column); out and quads are the caller's */
__attribute__((noinline)) static void dk_c1f_mve_job_make(const dk_conv1d_params *p, const int16_t *packed,
                                                          const int16_t *image, int32_t cols,
                                                          dk_c1f_mve_job *job)
{
    static const int32_t lanes[4] = {0, 4, 16, 20};   /* word offsets x 4: see dk_c1f_mve_quad */
    /* image position e of a group of 4 holds tap {0, 2, 1, 3}[e]; a group of an int8 record
     * is channel o's 4 bytes in tap order, then o+1's */
    static const uint16_t order[8] = {0, 2, 1, 3, 8, 10, 9, 11};
    const int32_t out_c = p->out_c;
    const int32_t taps = p->taps;
    const int32_t col_step = p->stride * p->in_c;
    const int32_t first = (taps & 4) ? 4 : 8;
    const int32_t steps = (taps - first) >> 3;
    const int32_t step = p->weights8 ? DK_C1F_MVE8_STEP : DK_C1F_MVE_STEP;
    /* the first gather reads base + 32 (8 taps, writeback) or base + 16 (4 taps, none) and
     * the next base + 32 */
    const int32_t skip = 2 * DK_C1F_HEAD - (first == 8 ? 32 : 16);
    int32_t k;
    job->weight_bytes = 2 * dk_c1f_weight_units(p);
    job->first = first == 8 ? 0 : p->weights8 ? DK_C1F_MVE8_F4 : DK_C1F_MVE_F4;
    job->entry = steps == 0 ? 8 * step : ((8 - (steps & 7)) & 7) * step;
    job->rec = packed;
    job->rec_end = packed + (out_c >> 1) * dk_c1f_record_units(p);
    job->x_step = 8 * col_step;
    job->out_step = 3 * out_c;
    for (k = 0; k < 4; ++k) {
        const int32_t c = k < cols ? k : cols - 1;
        job->gather.base[k] = lanes[k] + skip;
        job->x[k] = image + c * col_step;
        job->offsets[2 * k] = (uint16_t)(c * out_c);
        job->offsets[2 * k + 1] = (uint16_t)(c * out_c + 1);
    }
    if (p->weights8) {
        memcpy(job->gather.bytes, order, sizeof order);
    }
    job->x_end = job->x[0] + taps;
}

/* dk_conv1d_s8_fast on an MVE core (conv1d.c calls it first thing). Every block's image
 * starts at scratch, so one job serves the full quads of every block; only a block whose
 * width is not a multiple of 4 (the last) needs a second one for its last columns. */
__attribute__((noinline)) static void dk_conv1d_s8_fast_mve(const dk_conv1d_params *p, const int8_t *input,
                                                            const int16_t *packed, int16_t *scratch,
                                                            int8_t *output)
{
    /* the assembly sweep saturates to int8 and takes channel pairs only */
    const int32_t fast = (p->out_c & 1) == 0 && p->activation.min == -128 && p->activation.max == 127;
    const int32_t col_step = p->stride * p->in_c;
    void (*const quad)(const dk_c1f_mve_job *) = p->weights8 ? dk_c1f_mve_quad8 : dk_c1f_mve_quad;
    dk_c1f_mve_job full __attribute__((aligned(16)));
    dk_c1f_mve_job last __attribute__((aligned(16)));
    int32_t x0, last_n = 0;
    if (fast) {
        dk_c1f_mve_job_make(p, packed, scratch, 4, &full);
    }
    for (x0 = 0; x0 < p->out_w; x0 += p->block) {
        const int32_t n = p->out_w - x0 < p->block ? p->out_w - x0 : p->block;
        int8_t *out = output + x0 * p->out_c;
        dk_c1f_widen(p, input, x0 * p->stride - p->pad, (n - 1) * p->stride + p->kernel, scratch);
        if (!fast) {
            dk_c1f_mve_block(p, packed, scratch, n, out);
            continue;
        }
        if (n >= 4) {
            full.quads = n >> 2;
            full.out = out;
            quad(&full);
        }
        if (n & 3) {
            if (last_n != n) {
                dk_c1f_mve_job_make(p, packed, scratch + (n & ~3) * col_step, n & 3, &last);
                last.quads = 1;
                last_n = n;
            }
            last.out = out + (n & ~3) * p->out_c;
            quad(&last);
        }
    }
}

#endif /* DK_USE_MVE */

#endif /* DK_CONV1D_MVE_H */
