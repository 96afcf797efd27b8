/*
 * ew_fused_mve.h - the fused element-wise kernels of ew_fused.h with Helium (MVE), for the
 * inference itself (the last stage; the debug dump's intermediate stages stay scalar).
 * Included by ew_fused.h on cores with integer MVE (dk_mve.h).
 *
 * Four int8 elements per vector, widened to int32 lanes on load (VLDRB.S32) and narrowed on
 * store (VSTRB.32), every step of ew_fast.h lane by lane with the same arithmetic:
 *     dk_fast_mbqm:  t = VRMULH(x << left, m) (SMMULR's (a * b + 2^31) >> 32);
 *                    (t + [e >= 1] (t >> 31) + 2^(e-1)) >> e (VSHL by -e: a flooring shift)
 *     the output:    + zero point, then VMAX / VMIN to [max(lo, -128), min(hi, 127)]
 * The element-wise data is [positions][channels], so the lanes are 4 adjacent channels of one
 * position and the per-channel constants are vectors loaded once per group of 4 channels; a
 * last group of fewer channels is handled with a lane predicate (VCTP).
 */
#ifndef DK_EW_FUSED_MVE_H
#define DK_EW_FUSED_MVE_H

#include "dk_mve.h"
#include "ew_fast.h"

#if DK_USE_MVE

DK_INLINE int32x4_t dk_mve_mbqm(int32x4_t x, const dk_fast_rq *q)
{
    int32x4_t t = vrmulhq_s32(vshlq_r_s32(x, q->left), vdupq_n_s32(q->multiplier));
    if (q->neg) {
        t = vaddq_s32(t, vshrq_n_s32(t, 31));
    }
    if (q->right > 0) {
        t = vshlq_r_s32(vaddq_n_s32(t, q->round), -q->right);
    }
    return t;
}

/* dk_ew_scale lane-wise */
DK_INLINE int32x4_t dk_mve_scale(int32x4_t v, const dk_ew_input *in)
{
    return dk_mve_mbqm(vaddq_n_s32(v, in->offset), &in->scale);
}

/* dk_ew_out lane-wise */
DK_INLINE int32x4_t dk_mve_out(int32x4_t acc, const dk_ew_output *out)
{
    const int32x4_t y = vaddq_n_s32(dk_mve_mbqm(acc, &out->scale), out->zero_point);
    return vmaxq_s32(vminq_s32(y, vdupq_n_s32(out->max < 127 ? out->max : 127)),
                     vdupq_n_s32(out->min > -128 ? out->min : -128));
}

/* The last stage of dk_shrink_s8_inline (k prepared there): y, or z with a shortcut */
DK_INLINE void dk_shrink_mve(const dk_shrink_ctx *k, const dk_add_params *add, const dk_add_params *sub,
                             int32_t positions, int32_t channels, const int8_t *r, const int8_t *tau,
                             const int8_t *shortcut, int8_t *out)
{
    const dk_ew_input t_add = dk_ew_input2(add);
    const dk_ew_input t_sub = dk_ew_input2(sub);
    const int32x4_t min_value = vdupq_n_s32(k->min_value);
    int32_t c, i;
    for (c = 0; c < channels; c += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)(channels - c));
        const int32x4_t tv = vldrbq_z_s32(tau + c, p);
        const int32x4_t tau_add = dk_mve_scale(tv, &t_add);
        const int32x4_t tau_sub = dk_mve_scale(tv, &t_sub);
        const int8_t *rp = r + c;
        const int8_t *sp = shortcut ? shortcut + c : 0;
        int8_t *op = out + c;
        for (i = 0; i < positions; ++i) {
            const int32x4_t rv = vldrbq_z_s32(rp, p);
            const int32x4_t a = dk_mve_out(vaddq_s32(dk_mve_scale(rv, &k->r_add), tau_add), &k->a_out);
            const int32x4_t m = vminq_s32(a, min_value);
            const int32x4_t s = dk_mve_out(vsubq_s32(dk_mve_scale(rv, &k->r_sub), tau_sub), &k->s_out);
            int32x4_t y = dk_mve_out(vaddq_s32(dk_mve_scale(s, &k->s_in), dk_mve_scale(m, &k->m_in)), &k->y_out);
            if (sp) {
                const int32x4_t sc = vldrbq_z_s32(sp, p);
                y = dk_mve_out(vaddq_s32(dk_mve_scale(y, &k->y_in), dk_mve_scale(sc, &k->sc_in)), &k->z_out);
                sp += channels;
            }
            vstrbq_p_s32(op, y, p);
            rp += channels;
            op += channels;
        }
    }
}

/* The last stage of dk_channel_affine_s8_inline: y = (x * scale[c]) + shift[c] */
DK_INLINE void dk_channel_affine_mve(const dk_ew_output *u_out, const dk_ew_input *u_in,
                                     const dk_ew_input *b_in, const dk_ew_output *y_out, int32_t x_offset,
                                     int32_t k_offset, int32_t positions, int32_t channels, const int8_t *x,
                                     const int8_t *scale, const int8_t *shift, int8_t *out)
{
    int32_t c, i;
    for (c = 0; c < channels; c += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)(channels - c));
        const int32x4_t k = vaddq_n_s32(vldrbq_z_s32(scale + c, p), k_offset);
        const int32x4_t b = dk_mve_scale(vldrbq_z_s32(shift + c, p), b_in);
        const int8_t *xp = x + c;
        int8_t *op = out + c;
        for (i = 0; i < positions; ++i) {
            const int32x4_t xv = vaddq_n_s32(vldrbq_z_s32(xp, p), x_offset);
            const int32x4_t u = dk_mve_out(vmulq_s32(xv, k), u_out);
            vstrbq_p_s32(op, dk_mve_out(vaddq_s32(dk_mve_scale(u, u_in), b), y_out), p);
            xp += channels;
            op += channels;
        }
    }
}

/* dk_add_same_s8_inline: size elements, 4 per vector, the last ones predicated */
DK_INLINE void dk_add_same_mve(const dk_ew_input *in1, const dk_ew_input *in2, const dk_ew_output *out,
                               int32_t size, const int8_t *input1, const int8_t *input2, int8_t *output,
                               int32_t subtract)
{
    int32_t i;
    for (i = 0; i < size; i += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)(size - i));
        const int32x4_t a = dk_mve_scale(vldrbq_z_s32(input1 + i, p), in1);
        const int32x4_t b = dk_mve_scale(vldrbq_z_s32(input2 + i, p), in2);
        vstrbq_p_s32(output + i, dk_mve_out(subtract ? vsubq_s32(a, b) : vaddq_s32(a, b), out), p);
    }
}

#endif /* DK_USE_MVE */

#endif /* DK_EW_FUSED_MVE_H */
