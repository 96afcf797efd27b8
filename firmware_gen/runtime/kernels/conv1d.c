/*
 * conv1d.c - CONV_2D with a 1 x K filter (a Keras Conv1D), im2col-free, on weights the
 * generator packed for the inner loop (layout in dk.h, dk_conv1d_params).
 *
 * For an output column the K taps of every input channel are one contiguous run of the
 * input ((x * stride - pad) * in_c onwards), so each output is a dot product of two
 * contiguous vectors. The input is widened once per block of output columns into an int16
 * scratch image with the input offset added and the padding columns as zeros, so the inner
 * loop needs no bounds checks and no offset arithmetic.
 *
 * DSP variant (DK_USE_DSP): 2 output columns x 2 output channels per pass; per 4 taps one
 * 8-byte load of packed weights (4 taps of each channel, stored w0 w2 w1 w3 so that SXTB16
 * and SXTB16 ROR 8 give the pairs (w0,w1), (w2,w3) in the order of the int16 image), two
 * 8-byte loads of input and eight SMLAD dual multiply-accumulates. Portable variant: the
 * same blocks with plain multiply-adds. Both requantize exactly as TFLM (dk_mbqm).
 *
 * dk_conv1d_s8_fast: the fast variant (layout, arithmetic and why: conv1d.h), with its
 * loops in assembly on DSP cores (dk_c1f_widen16, dk_c1f_sweep below), and in Helium
 * intrinsics and assembly on MVE cores, both kinds of record (conv1d_mve.h; -DDK_NO_MVE
 * keeps the DSP path there).
 */
#include <stddef.h>

#include "conv1d.h"
#include "conv1d_mve.h"

int32_t dk_conv1d_scratch_bytes(const dk_conv1d_params *p)
{
    return dk_conv1d_scratch_bytes_inline(p);
}

void dk_conv1d_s8(const dk_conv1d_params *p, const dk_channel_requant *quant,
                  const int8_t *input, const int8_t *packed_filter, const int32_t *bias,
                  int16_t *scratch, int8_t *output)
{
    dk_conv1d_s8_inline(p, quant, input, packed_filter, bias, scratch, output);
}

/* The fast variant (layout and arithmetic: conv1d.h). Generated model.c calls this one copy
 * for every layer; on DSP cores its loops are dk_c1f_sweep below. */
#if DK_C1F_ASM
/* Out of line, so that the driver's stack frame stays small while dk_c1f_sweep runs. */
__attribute__((noinline)) static void dk_c1f_widen_block(const dk_conv1d_params *p, const int8_t *input,
                                                         int32_t x0, int32_t n, int16_t *scratch)
{
    dk_c1f_widen(p, input, x0 * p->stride - p->pad, (n - 1) * p->stride + p->kernel, scratch);
}

__attribute__((noinline)) static void dk_c1f_rest_c(const dk_conv1d_params *p, const int16_t *packed,
                                                    const int16_t *scratch, int32_t n, int8_t *out)
{
    dk_c1f_block_c(p, packed, scratch, n, p->out_c >> 1, (p->out_c + 1) >> 1, out);
}

__attribute__((noinline)) static void dk_c1f_all_c(const dk_conv1d_params *p, const int8_t *input,
                                                   const int16_t *packed, int16_t *scratch, int8_t *output)
{
    dk_conv1d_s8_fast_c(p, input, packed, scratch, output);
}

void dk_conv1d_s8_fast(const dk_conv1d_params *p, const int8_t *input, const int16_t *packed,
                       int16_t *scratch, int8_t *output)
{
    int32_t x0;
#if DK_USE_MVE
    dk_conv1d_s8_fast_mve(p, input, packed, scratch, output);   /* Helium, both record kinds: conv1d_mve.h */
    return;
#endif
    if (p->out_c < 2 || p->activation.min != -128 || p->activation.max != 127) {
        dk_c1f_all_c(p, input, packed, scratch, output);   /* the sweep clamps to int8 only */
        return;
    }
    for (x0 = 0; x0 < p->out_w; x0 += p->block) {
        const int32_t n = p->out_w - x0 < p->block ? p->out_w - x0 : p->block;
        int8_t *out = output + x0 * p->out_c;
        dk_c1f_widen_block(p, input, x0, n, scratch);
        if (p->weights8) {
            dk_c1f_sweep8(p, packed, scratch, out, n);
        } else {
            dk_c1f_sweep(p, packed, scratch, out, n);
        }
        if (p->out_c & 1) {
            dk_c1f_rest_c(p, packed, scratch, n, out);
        }
    }
}
#else
void dk_conv1d_s8_fast(const dk_conv1d_params *p, const int8_t *input, const int16_t *packed,
                       int16_t *scratch, int8_t *output)
{
    dk_conv1d_s8_fast_c(p, input, packed, scratch, output);
}
#endif

#if DK_C1F_ASM
/*
 * dk_c1f_sweep: for each column pair (A, B) of the n widened columns, for each full channel
 * pair (out_c / 2 records from packed): 2 x 2 dot products, requantization, 4 byte stores.
 * A lone last column (n odd) is a pair of that column with itself (its second copy's stores
 * write the same bytes again).
 *
 * Registers in the dot product loop (all 14 in use):
 *   r0 r1 r2 r3  accumulators A o, A o+1, B o, B o+1 (start: the record's bias)
 *   r4 r5 r6 r7  4 taps of both channels (one LDM): o (t,t+2) (t+1,t+3), o+1 the same
 *   r8 r9        4 taps of one column (one LDRD; image order t t+2 t+1 t+3 like the weights)
 *   r10          weights, walking the records; r11 r12 A's and B's image; lr end of A's
 * A step of 4 taps is LDM, 2 LDRD, 8 SMLAD: 11 instructions (16 MACs), 4 bytes each. The
 * first step starts from the bias (no moves); the loop does 8 steps per pass, so one with
 * taps / 4 - 1 not a multiple of 8 is entered part-way (Duff style, one LDR PC).
 * Then per output: SMMLAR (+ rounding), ADD (acc >> 31), ASR e, SSAT 8, STRB; the 6 words
 * of requantization in one LDM, the image pointers (free then) hold the output pointers.
 *
 * Stack frame (the first 4 words come back with one LDM per channel pair):
 *   0 end of the full pairs' records   4 pa0 (A's image)   8 pb0 (B's)   12 end of A's image
 *  16 outA   20 outB   24 loop entry (| 1: Thumb)   28 columns left   32 packed
 *  36 2 * taps (bytes of a column's image)   40 bytes from a column pair's image to the next
 *  44 from a column pair's outputs to the next, less 2 per channel pair;   84: n (5th argument)
 */
#define DK_C1F_W16 "ldmia.w r10!, {r4, r5, r6, r7}\n\t"
/* size mode: the 8 int8 weights of a step, widened in the registers the LDM fills */
#define DK_C1F_W8                               \
    "ldrd    r4, r6, [r10], #8\n\t"             \
    "sxtb16  r5, r4, ror #8\n\t"                \
    "sxtb16  r4, r4\n\t"                        \
    "sxtb16  r7, r6, ror #8\n\t"                \
    "sxtb16  r6, r6\n\t"
#define DK_C1F_STEP(W)                          \
    W                                           \
    "ldrd    r8, r9, [r11], #8\n\t"             \
    "smlad   r0, r8, r4, r0\n\t"                \
    "smlad   r1, r8, r6, r1\n\t"                \
    "smlad   r0, r9, r5, r0\n\t"                \
    "smlad   r1, r9, r7, r1\n\t"                \
    "ldrd    r8, r9, [r12], #8\n\t"             \
    "smlad   r2, r8, r4, r2\n\t"                \
    "smlad   r3, r8, r6, r3\n\t"                \
    "smlad   r2, r9, r5, r2\n\t"                \
    "smlad   r3, r9, r7, r3\n\t"
#define DK_STR_(x) #x
#define DK_STR(x) DK_STR_(x)

/* the fields of dk_conv1d_params dk_c1f_sweep reads, at the offsets dk_params.h derives from
 * the struct's description (firmware_gen/ops/conv1d.py); the compiler checks them here */
_Static_assert(offsetof(dk_conv1d_params, in_c) == DK_CONV1D_PARAMS_IN_C
               && offsetof(dk_conv1d_params, out_c) == DK_CONV1D_PARAMS_OUT_C
               && offsetof(dk_conv1d_params, stride) == DK_CONV1D_PARAMS_STRIDE
               && offsetof(dk_conv1d_params, taps) == DK_CONV1D_PARAMS_TAPS,
               "dk_params.h's assembly offsets of dk_conv1d_params are not the compiler's");

/* one output: y = SSAT8((SMMLAR(acc, m, rnd) + (acc >> 31)) >> e) into register y, stored at
 * [out], out += 1 */
#define DK_C1F_OUT(y, acc, m, rnd, e, out)                  \
    "smmlar  " y ", " acc ", " m ", " rnd "\n\t"            \
    "add     " y ", " y ", " acc ", asr #31\n\t"            \
    "asr     " y ", " y ", " e "\n\t"                       \
    "ssat    " y ", #8, " y "\n\t"                          \
    "strb    " y ", [" out "], #1\n\t"

/* dk_c1f_widen16: per 16 input bytes one LDM, 8 SXTB16 (the image order of each group of 4
 * is what SXTB16 / SXTB16 ROR 8 give), one STM of the 8 words; count >= 1 */
__attribute__((naked)) void dk_c1f_widen16(const int8_t *src __attribute__((unused)),
                                           int16_t *dst __attribute__((unused)),
                                           int32_t count __attribute__((unused)))
{
    __asm__ volatile(
        "push    {r4-r8, lr}\n"
        "1:\n\t"
        "ldmia   r0!, {r4, r6, r8, lr}\n\t"
        "sxtb16  r3, r4\n\t"
        "sxtb16  r4, r4, ror #8\n\t"
        "sxtb16  r5, r6\n\t"
        "sxtb16  r6, r6, ror #8\n\t"
        "sxtb16  r7, r8\n\t"
        "sxtb16  r8, r8, ror #8\n\t"
        "sxtb16  r12, lr\n\t"
        "sxtb16  lr, lr, ror #8\n\t"
        "stmia   r1!, {r3, r4, r5, r6, r7, r8, r12, lr}\n\t"
        "subs    r2, r2, #1\n\t"
        "bne     1b\n\t"
        "pop     {r4-r8, pc}\n\t");
}

#define DK_C1F_SWEEP(WSHIFT, W, STEP_BYTES, DOUBLE) \
        "push    {r4-r11, lr}\n\t"                                                                \
        "sub     sp, #48\n\t"                                                                     \
        "ldr     r4, [r0, #" DK_STR(DK_CONV1D_PARAMS_TAPS) "]\n\t" /* taps */                     \
        "ldr     r5, [r0, #" DK_STR(DK_CONV1D_PARAMS_OUT_C) "]\n\t" /* out_c */                   \
        "asr     r6, r5, #1\n\t"                /* full pairs */                                  \
        "lsl     r7, r4, #" WSHIFT "\n\t"         /* weight bytes */                              \
        "add     r7, r7, #32\n\t"               /* record bytes: those + 32 */                    \
        "mla     r8, r6, r7, r1\n\t"                                                              \
        "str     r8, [sp, #0]\n\t"              /* end of the records */                          \
        "lsl     r7, r4, #1\n\t"                                                                  \
        "strd    r1, r7, [sp, #32]\n\t"         /* packed, 2 * taps */                            \
        "ldr     r7, [r0, #" DK_STR(DK_CONV1D_PARAMS_STRIDE) "]\n\t" /* stride */                 \
        "ldr     r8, [r0, #" DK_STR(DK_CONV1D_PARAMS_IN_C) "]\n\t" /* in_c */                     \
        "mul     r7, r7, r8\n\t"                                                                  \
        "lsl     r7, r7, #1\n\t"                /* bytes per column */                            \
        "add     r8, r2, r7\n\t"                                                                  \
        "strd    r2, r8, [sp, #4]\n\t"          /* pa0, pb0 */                                    \
        "lsl     r7, r7, #1\n\t"                                                                  \
        "sub     r8, r5, r6\n\t"                                                                  \
        "lsl     r8, r8, #1\n\t"                                                                  \
        "strd    r7, r8, [sp, #40]\n\t"         /* per column pair: image, outputs */             \
        "add     r8, r3, r5\n\t"                                                                  \
        "strd    r3, r8, [sp, #16]\n\t"         /* outA, outB */                                  \
        "lsr     r7, r4, #2\n\t"                /* loop entry: taps / 4 - 1 steps in the loop */  \
        "sub     r7, r7, #1\n\t"                                                                  \
        "rsb     r7, r7, #0\n\t"                                                                  \
        "and     r7, r7, #7\n\t"                                                                  \
        "cmp     r4, #4\n\t"                                                                      \
        "it      eq\n\t"                                                                          \
        "moveq   r7, #8\n\t"                    /* none: straight past it */                      \
        "movs    r8, #" DK_STR(STEP_BYTES) "\n\t"                                                 \
        "mul     r7, r7, r8\n\t"                                                                  \
        "adr     r8, 3f\n\t"                                                                      \
        "add     r7, r7, r8\n\t"                                                                  \
        "orr     r7, r7, #1\n\t"                                                                  \
        "ldr     r8, [sp, #84]\n\t"             /* n */                                           \
        "strd    r7, r8, [sp, #24]\n"                                                             \
        "1:\n\t"                                /* column pair */                                 \
        "ldr     r1, [sp, #28]\n\t"                                                               \
        "cmp     r1, #1\n\t"                                                                      \
        "blt     9f\n\t"                                                                          \
        "bne     5f\n\t"                                                                          \
        "ldr     r2, [sp, #4]\n\t"              /* a lone column: B is A */                       \
        "str     r2, [sp, #8]\n\t"                                                                \
        "ldr     r2, [sp, #16]\n\t"                                                               \
        "str     r2, [sp, #20]\n"                                                                 \
        "5:\n\t"                                                                                  \
        "sub     r1, r1, #2\n\t"                                                                  \
        "str     r1, [sp, #28]\n\t"                                                               \
        "ldrd    r10, lr, [sp, #32]\n\t"        /* packed, 2 * taps */                            \
        "ldm     sp, {r4, r11, r12}\n\t"                                                          \
        "add     lr, r11, lr\n\t"                                                                 \
        "str     lr, [sp, #12]\n"                                                                 \
        "2:\n\t"                                /* channel pair: bias, first step */              \
        "ldrd    r0, r1, [r10], #8\n\t"                                                           \
        W                                                                                         \
        "ldrd    r8, r9, [r12], #8\n\t"                                                           \
        "smlad   r2, r8, r4, r0\n\t"                                                              \
        "smlad   r3, r8, r6, r1\n\t"                                                              \
        "smlad   r2, r9, r5, r2\n\t"                                                              \
        "smlad   r3, r9, r7, r3\n\t"                                                              \
        "ldrd    r8, r9, [r11], #8\n\t"                                                           \
        "smlad   r0, r8, r4, r0\n\t"                                                              \
        "smlad   r1, r8, r6, r1\n\t"                                                              \
        "smlad   r0, r9, r5, r0\n\t"                                                              \
        "smlad   r1, r9, r7, r1\n\t"                                                              \
        "ldr     pc, [sp, #24]\n\t"             /* into the loop, or past it */                   \
        ".p2align 2\n"                                                                            \
        "3:\n\t"                                                                                  \
        DK_C1F_STEP(W) DK_C1F_STEP(W) DK_C1F_STEP(W) DK_C1F_STEP(W)                               \
        DK_C1F_STEP(W) DK_C1F_STEP(W) DK_C1F_STEP(W) DK_C1F_STEP(W)                               \
        "4:\n\t"                                                                                  \
        ".if (4b - 3b) != 8 * " DK_STR(STEP_BYTES) "\n\t"                                         \
        ".error \"dk_c1f_sweep: a loop step is not DK_C1F_STEP_BYTES long\"\n\t"                  \
        ".endif\n\t"                                                                              \
        "cmp     r11, lr\n\t"                                                                     \
        "bne     3b\n\t"                                                                          \
        DOUBLE                                                                                    \
        "ldrd    r11, r12, [sp, #16]\n\t"       /* outA, outB */                                  \
        "ldmia.w r10!, {r4, r5, r6, r7, r8, r9}\n\t"                                              \
        DK_C1F_OUT("lr", "r0", "r4", "r5", "r6", "r11")                                           \
        DK_C1F_OUT("r0", "r2", "r4", "r5", "r6", "r12")                                           \
        DK_C1F_OUT("r2", "r1", "r7", "r8", "r9", "r11")                                           \
        DK_C1F_OUT("r1", "r3", "r7", "r8", "r9", "r12")                                           \
        "strd    r11, r12, [sp, #16]\n\t"                                                         \
        "ldm     sp, {r4, r11, r12, lr}\n\t"                                                      \
        "cmp     r10, r4\n\t"                                                                     \
        "bne     2b\n\t"                                                                          \
        "ldrd    r1, r2, [sp, #40]\n\t"         /* next column pair */                            \
        "add     r11, r11, r1\n\t"                                                                \
        "add     r12, r12, r1\n\t"                                                                \
        "strd    r11, r12, [sp, #4]\n\t"                                                          \
        "ldrd    r3, r4, [sp, #16]\n\t"                                                           \
        "add     r3, r3, r2\n\t"                                                                  \
        "add     r4, r4, r2\n\t"                                                                  \
        "strd    r3, r4, [sp, #16]\n\t"                                                           \
        "b       1b\n"                                                                            \
        "9:\n\t"                                                                                  \
        "add     sp, #48\n\t"                                                                     \
        "pop     {r4-r11, pc}\n\t"

__attribute__((naked)) void dk_c1f_sweep(const dk_conv1d_params *p __attribute__((unused)),
                                         const int16_t *packed __attribute__((unused)),
                                         const int16_t *image __attribute__((unused)),
                                         int8_t *out __attribute__((unused)),
                                         int32_t n __attribute__((unused)))
{
    __asm__ volatile(DK_C1F_SWEEP("2", DK_C1F_W16, DK_C1F_STEP_BYTES, ""));
}

/* size mode: int8 weights (records of 2 * taps + 32 bytes), the accumulators doubled
 * before the requantization (conv1d.h) */
__attribute__((naked)) void dk_c1f_sweep8(const dk_conv1d_params *p __attribute__((unused)),
                                         const int16_t *packed __attribute__((unused)),
                                         const int16_t *image __attribute__((unused)),
                                         int8_t *out __attribute__((unused)),
                                         int32_t n __attribute__((unused)))
{
    __asm__ volatile(DK_C1F_SWEEP("1", DK_C1F_W8, DK_C1F_STEP8_BYTES,
                                  "add     r0, r0, r0\n\t" "add     r1, r1, r1\n\t"
                                  "add     r2, r2, r2\n\t" "add     r3, r3, r3\n\t"));
}
#endif
