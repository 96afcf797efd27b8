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

/* An int8 value moved to the common scale of its ADD/SUB. */
DK_INLINE int32_t dk_ew_scale(int32_t v, const dk_ew_input *in)
{
    return dk_fast_mbqm(v + in->offset, &in->scale);
}

/* A common-scale sum or difference to the int8 output. */
DK_INLINE int32_t dk_ew_out(int32_t acc, const dk_ew_output *out)
{
    const int32_t y = dk_fast_mbqm(acc, &out->scale) + out->zero_point;
    return dk_clamp8(y, out->min, out->max);
}

#endif /* DK_EW_FAST_H */
