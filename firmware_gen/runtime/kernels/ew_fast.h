/*
 * ew_fast.h - the element-wise steps of ADD, SUB and MUL with TFLM's exact int8 arithmetic,
 * written for the fused kernels (shrink.c, channel_affine.c). Every step rescales exactly
 * as the TFLM reference kernel does; only the instruction sequence differs (dk_acle.h).
 * The generator uses these kernels only when all operands are int8 tensors, which keeps
 * every intermediate inside the range dk_fast_mbqm needs.
 */
#ifndef DK_EW_FAST_H
#define DK_EW_FAST_H

#include "dk.h"
#include "dk_acle.h"

/* One input of ADD/SUB, prepared: offset and rescaling to the common scale. The ADD's
 * 20-bit headroom shift is folded into the rescaling's own left shift. */
typedef struct {
    int32_t offset;
    dk_fast_rq scale;
} dk_ew_input;

/* The output side of ADD/SUB/MUL: rescale, zero point, clamp. */
typedef struct {
    dk_fast_rq scale;
    int32_t zero_point;
    int32_t min;
    int32_t max;
} dk_ew_output;

DK_INLINE dk_ew_input dk_ew_input1(const dk_add_params *p)
{
    dk_ew_input in;
    in.offset = p->input1_offset;
    in.scale = dk_fast_rq_make(p->input1.multiplier, p->input1.shift);
    in.scale.left += p->left_shift;
    return in;
}

DK_INLINE dk_ew_input dk_ew_input2(const dk_add_params *p)
{
    dk_ew_input in;
    in.offset = p->input2_offset;
    in.scale = dk_fast_rq_make(p->input2.multiplier, p->input2.shift);
    in.scale.left += p->left_shift;
    return in;
}

DK_INLINE dk_ew_output dk_ew_add_output(const dk_add_params *p)
{
    dk_ew_output out;
    out.scale = dk_fast_rq_make(p->output.multiplier, p->output.shift);
    out.zero_point = p->output_offset;
    out.min = p->activation.min;
    out.max = p->activation.max;
    return out;
}

DK_INLINE dk_ew_output dk_ew_mul_output(const dk_mul_params *p)
{
    dk_ew_output out;
    out.scale = dk_fast_rq_make(p->output.multiplier, p->output.shift);
    out.zero_point = p->output_offset;
    out.min = p->activation.min;
    out.max = p->activation.max;
    return out;
}

/*
 * dk_fast_mbqm(x, q) + bias, in fewer instructions; bias must be a multiple of 2^q->right
 * (an output zero point moved inside the shift: ((t + r) >> e) + zp = (t + r + zp * 2^e) >> e).
 * - The rounding constant and bias ride on SMMLAR's accumulator.
 * - The [t < 0] correction takes the sign of x instead of t: t = SMMULR(x << left, m) with
 *   m >= 0 has x's sign or is 0, and for t = 0 and x < 0 the correction changes nothing:
 *   (2^(e-1) - 1 + bias) >> e = (2^(e-1) + bias) >> e for e >= 1. x is known before the
 *   multiply, so the correction is one ADD with a shifted operand.
 * - The multiplier 2^30 (the larger input of an ADD/SUB has scale ratio 0.5 exactly) is a
 *   plain shift: SMMULR(x << left, 2^30) = x * 2^(left - 2) for left >= 2, no rounding.
 * All parameters are constants in the generated code, so the branches fold away.
 */
DK_INLINE int32_t dk_ew_mbqm(int32_t x, const dk_fast_rq *q, int32_t bias)
{
    const uint32_t xs = (uint32_t)x << q->left;
    int32_t t;
    if (q->multiplier == 0x40000000 && q->left >= 2) {
        t = (int32_t)((uint32_t)x << (q->left - 2)) + bias;
        if (q->right == 0) {
            return t;
        }
        return (t + q->round + (x >> 31)) >> q->right;
    }
    if (q->right == 0) {
        return dk_smmlar((int32_t)xs, q->multiplier, bias);
    }
    t = dk_smmlar((int32_t)xs, q->multiplier, q->round + bias);
    return (t + (x >> 31)) >> q->right;
}

/* An int8 value moved to the common scale of its ADD/SUB. */
DK_INLINE int32_t dk_ew_scale(int32_t v, const dk_ew_input *in)
{
    return dk_ew_mbqm(v + in->offset, &in->scale, 0);
}

/* A common-scale sum or difference to the int8 output. The zero point goes inside the shift
 * when zp * 2^e stays well inside int32 (e <= 22; |t| < 2^29 on the fast path). */
DK_INLINE int32_t dk_ew_out(int32_t acc, const dk_ew_output *out)
{
    int32_t y;
    if (out->scale.right <= 22) {
        y = dk_ew_mbqm(acc, &out->scale, out->zero_point * (int32_t)(1u << out->scale.right));
    } else {
        y = dk_ew_mbqm(acc, &out->scale, 0) + out->zero_point;
    }
    return dk_clamp8(y, out->min, out->max);
}

#endif /* DK_EW_FAST_H */
