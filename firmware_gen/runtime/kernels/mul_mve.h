/*
 * mul_mve.h - MUL's rows with Helium (MVE), included by mul.c on cores with integer MVE
 * (dk_mve.h). The batch norms the generator cannot fuse stay a broadcasting MUL (a row of
 * channels times a row of per-channel constants), which the scalar row spends about 40
 * instructions per element on; here 4 elements per vector, widened to int32 lanes on load
 * and narrowed on store, a predicated last group.
 *
 * Same arithmetic as dk_mbqm, lane by lane:
 *  - VQRDMULH.S32 by the multiplier equals TFLM's saturating rounding doubling high multiply
 *    on every input (TFLM's nudge for negative products and VQRDMULH's + 2^31 round the
 *    same ties; INT32_MIN * INT32_MIN saturates in both);
 *  - the rounding divide by 2^right is VRSHL by -right after adding the sign (x >> 31):
 *    VRSHL alone rounds a negative tie up, TFLM away from zero (dk_mve.h); no sign step
 *    when right is 0.
 */
#ifndef DK_MUL_MVE_H
#define DK_MUL_MVE_H

#include "dk_acle.h"
#include "dk_mve.h"
#include "fixedpoint.h"

#if DK_USE_MVE

/* One row of mul.c's mul_row when both strides are 0 or 1; 0 when it cannot take the row */
DK_INLINE int32_t dk_mul_row_mve(const dk_mul_params *p, int32_t n, const int8_t *a, int32_t sa,
                                 const int8_t *b, int32_t sb, int8_t *out)
{
    const int32_t shift = p->output.shift;
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t m = p->output.multiplier;
    const int32_t o1 = p->input1_offset, o2 = p->input2_offset;
    const int32x4_t lo = vdupq_n_s32(p->activation.min < -128 ? -128 : p->activation.min);
    const int32x4_t hi = vdupq_n_s32(p->activation.max > 127 ? 127 : p->activation.max);
    int32_t i;
    if (((sa | sb) & ~1) != 0 || n <= 0) {
        return 0;
    }
    for (i = 0; i < n; i += 4) {
        const mve_pred16_t pr = vctp32q((uint32_t)(n - i));
        const int32x4_t x = sa ? vaddq_n_s32(vldrbq_z_s32(a + i, pr), o1) : vdupq_n_s32(o1 + *a);
        int32x4_t t = sb ? vmulq_s32(x, vaddq_n_s32(vldrbq_z_s32(b + i, pr), o2)) : vmulq_n_s32(x, o2 + *b);
        if (left) {
            t = vshlq_r_s32(t, left);
        }
        t = vqrdmulhq_n_s32(t, m);
        if (right) {
            t = vrshlq_n_s32(vaddq_s32(t, vshrq_n_s32(t, 31)), -right);
        }
        t = vminq_s32(vmaxq_s32(vaddq_n_s32(t, p->output_offset), lo), hi);
        vstrbq_p_s32(out + i, t, pr);
    }
    return 1;
}

#endif /* DK_USE_MVE */

#endif /* DK_MUL_MVE_H */
