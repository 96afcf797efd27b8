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
 * dk_fast_mbqm(x, q) + bias from xs = x << q->left (callers fold that shift into earlier
 * steps), in fewer instructions; bias must be a multiple of 2^q->right (an output zero point
 * moved inside the shift: ((t + r) >> e) + zp = (t + r + zp * 2^e) >> e).
 * - The rounding constant and bias ride on SMMLAR's accumulator.
 * - The [t < 0] correction takes the sign of xs instead of t: t = SMMULR(xs, m) with m >= 0
 *   has xs's sign or is 0 (|xs| < 2^30 on the fast path, so xs has x's sign), and for t = 0
 *   and x < 0 the correction changes nothing: (2^(e-1) - 1 + bias) >> e = (2^(e-1) + bias)
 *   >> e for e >= 1. xs is known before the multiply: the correction is one ADD.
 * - The multiplier 2^30 (the larger input of an ADD/SUB has scale ratio 0.5 exactly) is a
 *   plain shift: SMMULR(x << left, 2^30) = x * 2^(left - 2) for left >= 2, no rounding.
 * All parameters are constants in the generated code, so the branches fold away.
 */
/* x, with its value hidden from GCC: a constant the loop needs then stays in a register
 * (or is one literal load) instead of being rebuilt inside the loop with up to 3 ADDs, and
 * can be the register operand of an ADD with a shifted operand. */
DK_INLINE int32_t dk_opaque(int32_t x)
{
#if defined(__GNUC__) && defined(__arm__)
    __asm__("" : "+r"(x));
#endif
    return x;
}

#if defined(__GNUC__)
#define DK_CONSTANT_P(x) __builtin_constant_p(x)
#else
#define DK_CONSTANT_P(x) 0
#endif

DK_INLINE int32_t dk_shl(int32_t x, int32_t n)
{
    return (int32_t)((uint32_t)x << n);
}

DK_INLINE int32_t dk_ew_pow2(const dk_fast_rq *q)
{
    return q->multiplier == 0x40000000 && q->left >= 2;
}

DK_INLINE int32_t dk_ew_rq(int32_t xs, const dk_fast_rq *q, int32_t bias)
{
    int32_t t;
    if (dk_ew_pow2(q)) {
        t = xs >> 2;   /* exact: xs is a multiple of 4 */
        if (q->right == 0) {
            return t + bias;
        }
        return (t + q->round + bias + (t >> 31)) >> q->right;
    }
    if (q->right == 0) {
        return dk_smmlar(xs, dk_opaque(q->multiplier), bias);
    }
    t = dk_smmlar(xs, dk_opaque(q->multiplier), q->round + bias);
    return (t + (xs >> 31)) >> q->right;
}

/* An int8 value moved to the common scale of its ADD/SUB, times 2^lo (lo: the output's left
 * shift, so the sum needs no shift of its own). For the multiplier 2^30 the result is
 * (v + offset) * 2^(left - 2 + lo): one ADD with a shifted operand. */
DK_INLINE int32_t dk_ew_scale_ls(int32_t v, const dk_ew_input *in, int32_t lo)
{
    const dk_fast_rq *q = &in->scale;
    if (dk_ew_pow2(q) && q->right == 0) {
        return dk_shl(v, q->left - 2 + lo) + dk_shl(in->offset, q->left - 2 + lo);
    }
    return dk_shl(dk_ew_rq(dk_shl(v, q->left) + dk_opaque(dk_shl(in->offset, q->left)), q, 0), lo);
}

/* dk_ew_scale_ls(v, in, lo) + bias * 2^lo. On the multiplier 2^30 bias joins the offset's
 * constant; else, for a constant bias small enough (|bias * 2^right| < 2^29, beside
 * |t| < 2^29), the rounding accumulator carries bias * 2^right through the shift exactly. */
DK_INLINE int32_t dk_ew_scale_ls_b(int32_t v, const dk_ew_input *in, int32_t lo, int32_t bias)
{
    const dk_fast_rq *q = &in->scale;
    const int64_t wide = (int64_t)bias * ((int64_t)1 << q->right);
    if (dk_ew_pow2(q) && q->right == 0) {
        return dk_shl(v, q->left - 2 + lo) + dk_opaque(dk_shl(in->offset, q->left - 2 + lo) + dk_shl(bias, lo));
    }
    if (DK_CONSTANT_P(bias) && wide > -(1 << 29) && wide < (1 << 29)) {
        return dk_shl(dk_ew_rq(dk_shl(v, q->left) + dk_opaque(dk_shl(in->offset, q->left)), q, (int32_t)wide), lo);
    }
    return dk_ew_scale_ls(v, in, lo) + dk_shl(bias, lo);
}

DK_INLINE int32_t dk_ew_scale(int32_t v, const dk_ew_input *in)
{
    return dk_ew_scale_ls(v, in, 0);
}

/* The int8 output from xs = (common-scale sum or difference) << out->scale.left. The zero
 * point goes inside the shift when zp * 2^e stays well inside int32 (e <= 22; |t| < 2^29
 * on the fast path). */
DK_INLINE int32_t dk_ew_out_ls(int32_t xs, const dk_ew_output *out)
{
    int32_t y;
    if (out->scale.right <= 22) {
        y = dk_ew_rq(xs, &out->scale, out->zero_point * (int32_t)(1u << out->scale.right));
    } else {
        y = dk_ew_rq(xs, &out->scale, 0) + out->zero_point;
    }
    return dk_clamp8(y, out->min, out->max);
}

DK_INLINE int32_t dk_ew_out(int32_t acc, const dk_ew_output *out)
{
    return dk_ew_out_ls(dk_shl(acc, out->scale.left), out);
}

/* A side on the multiplier 2^30 with no right shift: its rescaling is a bare shift. */
DK_INLINE int32_t dk_ew_bare(const dk_ew_input *in)
{
    return dk_ew_pow2(&in->scale) && in->scale.right == 0;
}

/* out(scale(v1) +- scale(v2)), both sides already shifted for the output. The bare side (the
 * larger input of a TFLM ADD/SUB always is) goes second: one ADD with a shifted operand, its
 * offset moved to the other side's constant. With constant parameters the swap and the
 * signs fold away; with run-time ones (the library functions) there is one path. */
DK_INLINE int32_t dk_ew_add2(int32_t v1, const dk_ew_input *in1, int32_t v2, const dk_ew_input *in2,
                             const dk_ew_output *out, int32_t subtract)
{
    const int32_t lo = out->scale.left;
    int32_t sign1 = 1, sign2 = subtract ? -1 : 1, x;
    if (dk_ew_bare(in1) && !dk_ew_bare(in2)) {
        const dk_ew_input *in = in1;
        const int32_t v = v1;
        in1 = in2;
        in2 = in;
        v1 = v2;
        v2 = v;
        sign1 = sign2;
        sign2 = 1;
    }
    if (dk_ew_bare(in2)) {
        const int32_t n = in2->scale.left - 2;
        x = sign1 * dk_ew_scale_ls_b(v1, in1, lo, sign1 * sign2 * dk_shl(in2->offset, n)) + sign2 * dk_shl(v2, n + lo);
    } else {
        x = sign1 * dk_ew_scale_ls(v1, in1, lo) + sign2 * dk_ew_scale_ls(v2, in2, lo);
    }
    return dk_ew_out_ls(x, out);
}

#endif /* DK_EW_FAST_H */
