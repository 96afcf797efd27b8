/*
 * ew_fused_mve.h - the fused element-wise kernels of ew_fused.h with Helium (MVE), for the
 * inference itself (the last stage; the debug dump's intermediate stages stay scalar).
 * Included by ew_fused.h on cores with integer MVE (dk_mve.h).
 *
 * Four int8 elements per vector, widened to int32 lanes on load (VLDRB.S32) and narrowed on
 * store (VSTRB.32), every step of ew_fast.h lane by lane with the same arithmetic:
 *     dk_fast_mbqm:  t = VQRDMULH(x << (left - 1), m) (SMMULR's (a * b + 2^31) >> 32 for
 *                    a = x << left), or for the multiplier 2^30 the exact x << (left - 2);
 *                    (t + [e >= 1] (t >> 31) + 2^(e-1)) >> e (VSHL by -e: a flooring shift)
 *     the output:    + zero point (inside the shift's rounding constant where it fits), then
 *                    VMAX / VMIN to [max(lo, -128), min(hi, 127)]
 * The element-wise data is [positions][channels], so the lanes are 4 adjacent channels of one
 * position and the per-channel constants are vectors loaded once per group of 4 channels; a
 * last group of fewer channels is handled with a lane predicate (VCTP).
 */
#ifndef DK_EW_FUSED_MVE_H
#define DK_EW_FUSED_MVE_H

#include "dk_mve.h"
#include "ew_fast.h"

#if DK_USE_MVE

/* x << n (n < 0: a flooring right shift). In the generated code n is a constant: no
 * instruction for n == 0 (the compiler does not fold VSHL by 0 away), and otherwise the
 * immediate forms VSHL #n / VSHR #-n, which need no scalar register for the amount (the soft
 * threshold has more scalar constants than there are core registers; the ones that do not
 * fit are reloaded on every pass). */
#define DK_MVE_SHL_CASE(n) case n: return vshlq_n_s32(x, n); case -(n): return vshrq_n_s32(x, n);

DK_INLINE int32x4_t dk_mve_shl(int32x4_t x, int32_t n)
{
    if (n == 0) {
        return x;
    }
    if (DK_CONSTANT_P(n)) {
        switch (n) {
        DK_MVE_SHL_CASE(1)
        DK_MVE_SHL_CASE(2)
        DK_MVE_SHL_CASE(3)
        DK_MVE_SHL_CASE(4)
        DK_MVE_SHL_CASE(5)
        DK_MVE_SHL_CASE(6)
        DK_MVE_SHL_CASE(7)
        DK_MVE_SHL_CASE(8)
        DK_MVE_SHL_CASE(9)
        DK_MVE_SHL_CASE(10)
        DK_MVE_SHL_CASE(11)
        DK_MVE_SHL_CASE(12)
        DK_MVE_SHL_CASE(13)
        DK_MVE_SHL_CASE(14)
        DK_MVE_SHL_CASE(15)
        DK_MVE_SHL_CASE(16)
        DK_MVE_SHL_CASE(17)
        DK_MVE_SHL_CASE(18)
        DK_MVE_SHL_CASE(19)
        DK_MVE_SHL_CASE(20)
        DK_MVE_SHL_CASE(21)
        DK_MVE_SHL_CASE(22)
        DK_MVE_SHL_CASE(23)
        DK_MVE_SHL_CASE(24)
        DK_MVE_SHL_CASE(25)
        DK_MVE_SHL_CASE(26)
        DK_MVE_SHL_CASE(27)
        DK_MVE_SHL_CASE(28)
        DK_MVE_SHL_CASE(29)
        DK_MVE_SHL_CASE(30)
        DK_MVE_SHL_CASE(31)
        default:
            break;
        }
    }
    return vshlq_r_s32(x, n);
}

/* x + n, no instruction for n == 0 (a zero offset) */
DK_INLINE int32x4_t dk_mve_addn(int32x4_t x, int32_t n)
{
    return n == 0 ? x : vaddq_n_s32(x, n);
}

/* 4 int8 lanes widened / narrowed; full (a multiple of 4 channels, a constant in the
 * generated code) needs no lane predicate: no VMSR + VPST around each load and store */
DK_INLINE int32x4_t dk_mve_ld(const int8_t *p, mve_pred16_t m, int32_t full)
{
    return full ? vldrbq_s32(p) : vldrbq_z_s32(p, m);
}

DK_INLINE void dk_mve_st(int8_t *p, int32x4_t v, mve_pred16_t m, int32_t full)
{
    if (full) {
        vstrbq_s32(p, v);
    } else {
        vstrbq_p_s32(p, v, m);
    }
}

/* the rounding shift of dk_fast_mbqm after the multiply, + bias (a multiple of 2^right: an
 * output zero point moved inside the shift, as in dk_ew_rq) */
DK_INLINE int32x4_t dk_mve_round_n(int32x4_t t, const dk_fast_rq *q, int32_t bias, int32_t neg)
{
    if (neg) {
        t = vaddq_s32(t, vshrq_n_s32(t, 31));
    }
    if (q->right > 0) {
        return dk_mve_shl(dk_mve_addn(t, q->round + bias), -q->right);
    }
    return bias != 0 ? dk_mve_addn(t, bias) : t;
}

DK_INLINE int32x4_t dk_mve_round(int32x4_t t, const dk_fast_rq *q, int32_t bias)
{
    return dk_mve_round_n(t, q, bias, q->neg);
}

/* dk_fast_mbqm lane-wise, + bias. The multiplier 2^30 (the larger ADD/SUB input) with
 * left >= 2 is the exact shift x << (left - 2), no VRMULH. */
DK_INLINE int32x4_t dk_mve_mbqm_bn(int32x4_t x, const dk_fast_rq *q, int32_t bias, int32_t neg)
{
    if (dk_ew_pow2(q)) {
        return dk_mve_round_n(dk_mve_shl(x, q->left - 2), q, bias, neg);
    }
    return dk_mve_round_n(vqrdmulhq_n_s32(dk_mve_shl(x, q->left - 1), q->multiplier), q, bias, neg);
}

DK_INLINE int32x4_t dk_mve_mbqm_b(int32x4_t x, const dk_fast_rq *q, int32_t bias)
{
    return dk_mve_mbqm_bn(x, q, bias, q->neg);
}

DK_INLINE int32x4_t dk_mve_mbqm(int32x4_t x, const dk_fast_rq *q)
{
    return dk_mve_mbqm_b(x, q, 0);
}

/* Whether scaling inputs v >= v_min needs the [t < 0] correction: not when v + offset >= 0
 * for all of them (an input clamped at or above its zero point, e.g. a ReLU output), as then
 * t >= 0 (the multipliers are positive) */
DK_INLINE int32_t dk_mve_neg(const dk_ew_input *in, int32_t v_min)
{
    return in->scale.neg && v_min + in->offset < 0;
}

/* dk_ew_scale lane-wise, for inputs v >= v_min (-128: any) */
DK_INLINE int32x4_t dk_mve_scale_m(int32x4_t v, const dk_ew_input *in, int32_t v_min)
{
    return dk_mve_mbqm_bn(dk_mve_addn(v, in->offset), &in->scale, 0, dk_mve_neg(in, v_min));
}

DK_INLINE int32x4_t dk_mve_scale(int32x4_t v, const dk_ew_input *in)
{
    return dk_mve_scale_m(v, in, -128);
}

/* The [t < 0] correction only moves a negative tie t down by one: from zp + v to zp + v - 1,
 * where v <= 0 (t + 2^(e-1) < 2^(e-1) for t < 0). With a lower clamp lo >= zp (a ReLU) both
 * clamp to lo, so such outputs skip it (two instructions a vector). The caller clamps the
 * result from below by dk_mve_lo(out). */
DK_INLINE int32_t dk_mve_lo(const dk_ew_output *out)
{
    return out->min > -128 ? out->min : -128;
}

/* dk_ew_out_ls lane-wise, from xs = acc << (left - 1) (formed so by the caller): VQRDMULH's
 * (2 * xs * m + 2^31) >> 32 is VRMULH's (acc << left) * m rounded, and takes the multiplier
 * as a scalar register (no Q register for it; it cannot saturate, m < 2^31 and |xs| < 2^29).
 * The zero point inside the rounding shift where it fits. */
DK_INLINE int32x4_t dk_mve_out_raw(int32x4_t xs, const dk_ew_output *out)
{
    const dk_fast_rq *q = &out->scale;
    const int32x4_t t = dk_ew_pow2(q) ? vshrq_n_s32(xs, 1) : vqrdmulhq_n_s32(xs, q->multiplier);
    const int32_t neg = q->neg && dk_mve_lo(out) < out->zero_point;
    return q->right > 0 && q->right <= 22
        ? dk_mve_round_n(t, q, out->zero_point * (int32_t)(1u << q->right), neg)
        : dk_mve_addn(dk_mve_round_n(t, q, 0, neg), out->zero_point);
}

DK_INLINE int32x4_t dk_mve_out_ls(int32x4_t xs, const dk_ew_output *out)
{
    return vmaxq_s32(vminq_s32(dk_mve_out_raw(xs, out), vdupq_n_s32(out->max < 127 ? out->max : 127)),
                     vdupq_n_s32(dk_mve_lo(out)));
}

/* dk_ew_out lane-wise */
DK_INLINE int32x4_t dk_mve_out(int32x4_t acc, const dk_ew_output *out)
{
    return dk_mve_out_ls(dk_mve_shl(acc, out->scale.left - 1), out);
}

/* (scale(v1) + scale(v2)) << lo with in2 bare (2^30, no right shift): one VMLA for v2, its
 * offset on v1's rounding constant where that is exact (as dk_ew_scale_ls_b) */
DK_INLINE int32x4_t dk_mve_sum_bare2(int32x4_t v1, const dk_ew_input *in1, int32_t min1, int32x4_t v2,
                                     const dk_ew_input *in2, int32_t lo)
{
    const int32_t n = in2->scale.left - 2;
    const int64_t k = (int64_t)in2->offset * ((int64_t)1 << (n + in1->scale.right));
    int32x4_t a;
    if (!dk_ew_bare(in1) && k > -(1 << 29) && k < (1 << 29)) {
        a = dk_mve_shl(dk_mve_mbqm_bn(dk_mve_addn(v1, in1->offset), &in1->scale, (int32_t)k, dk_mve_neg(in1, min1)),
                       lo);
    } else {
        a = dk_mve_addn(dk_mve_shl(dk_mve_scale_m(v1, in1, min1), lo), dk_shl(in2->offset, n + lo));
    }
    return vmlaq_n_s32(a, v2, (int32_t)(1u << (n + lo)));
}

/* (scale(v1) + scale(v2)) << lo: the sum of an ADD formed for its output; v1 >= min1,
 * v2 >= min2 (-128: any) */
DK_INLINE int32x4_t dk_mve_sum_ls(int32x4_t v1, const dk_ew_input *in1, int32_t min1, int32x4_t v2,
                                  const dk_ew_input *in2, int32_t min2, int32_t lo)
{
    if (dk_ew_bare(in2)) {
        return dk_mve_sum_bare2(v1, in1, min1, v2, in2, lo);
    }
    if (dk_ew_bare(in1)) {
        return dk_mve_sum_bare2(v2, in2, min2, v1, in1, lo);
    }
    return dk_mve_shl(vaddq_s32(dk_mve_scale_m(v1, in1, min1), dk_mve_scale_m(v2, in2, min2)), lo);
}

/* (scale(r) + t) << lo for a per-channel vector t: with a bare r one VMLA on a constant
 * prepared per group of channels (dk_mve_tau_ls) */
DK_INLINE int32x4_t dk_mve_tau_ls(const dk_ew_input *in, int32x4_t t, int32_t lo)
{
    return dk_ew_bare(in) ? dk_mve_shl(dk_mve_addn(t, dk_shl(in->offset, in->scale.left - 2)), lo) : t;
}

DK_INLINE int32x4_t dk_mve_r_plus_ls(int32x4_t rv, const dk_ew_input *in, int32_t r_min, int32x4_t tl, int32x4_t t,
                                     int32_t lo)
{
    if (dk_ew_bare(in)) {
        return vmlaq_n_s32(tl, rv, (int32_t)(1u << (in->scale.left - 2 + lo)));
    }
    return dk_mve_shl(vaddq_s32(dk_mve_scale_m(rv, in, r_min), t), lo);
}

/* y of the soft threshold for one vector r (a: r + tau, m: its MINIMUM, s: r - tau) */
DK_INLINE int32x4_t dk_shrink_mve_y(const dk_shrink_ctx *k, int32x4_t rv, int32x4_t ta, int32x4_t tau_add,
                                    int32x4_t ts, int32x4_t tau_sub, int32x4_t a_lo, int32x4_t m_hi)
{
    const int32_t la = k->a_out.scale.left - 1, ls = k->s_out.scale.left - 1;
    /* m = min(clamp(a, lo, hi), min_value) = min(max(a, lo), min(hi, min_value)) */
    const int32x4_t a = dk_mve_out_raw(dk_mve_r_plus_ls(rv, &k->r_add, -128, ta, tau_add, la), &k->a_out);
    const int32x4_t m = vminq_s32(vmaxq_s32(a, a_lo), m_hi);
    const int32x4_t s = dk_mve_out_ls(dk_mve_r_plus_ls(rv, &k->r_sub, -128, ts, tau_sub, ls), &k->s_out);
    /* s >= its clamp's floor, m >= min(a's floor, m_hi) */
    const int32_t a_hi = k->a_out.max < 127 ? k->a_out.max : 127;
    const int32_t m_top = a_hi < k->min_value ? a_hi : k->min_value;
    const int32_t m_min = dk_mve_lo(&k->a_out) < m_top ? dk_mve_lo(&k->a_out) : m_top;
    return dk_mve_out_ls(dk_mve_sum_ls(s, &k->s_in, dk_mve_lo(&k->s_out), m, &k->m_in, m_min,
                                       k->y_out.scale.left - 1), &k->y_out);
}

/* The last stage of dk_shrink_s8_inline (k prepared there): y, or z with a shortcut. Each sum
 * is formed already shifted for its output (dk_mve_out_ls), as the scalar loops do. One loop
 * per variant (with and without the shortcut), so no test of it per position. */
DK_INLINE void dk_shrink_mve(const dk_shrink_ctx *k, const dk_add_params *add, const dk_add_params *sub,
                             int32_t positions, int32_t channels, const int8_t *r, const int8_t *tau,
                             const int8_t *shortcut, int8_t *out)
{
    const dk_ew_input t_add = dk_ew_input2(add);
    const dk_ew_input t_sub = dk_ew_input2(sub);
    const int32_t hi = k->a_out.max < 127 ? k->a_out.max : 127;
    const int32x4_t a_lo = vdupq_n_s32(dk_mve_lo(&k->a_out));
    const int32x4_t m_hi = vdupq_n_s32(hi < k->min_value ? hi : k->min_value);
    const int32_t la = k->a_out.scale.left - 1, ls = k->s_out.scale.left - 1;
    const int32_t full = (channels & 3) == 0;
    int32_t c, i;
    for (c = 0; c < channels; c += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)(channels - c));
        const int32x4_t tv = vldrbq_z_s32(tau + c, p);
        const int32x4_t tau_add = dk_mve_scale(tv, &t_add);
        const int32x4_t tau_sub = vnegq_s32(dk_mve_scale(tv, &t_sub));
        const int32x4_t ta = dk_mve_tau_ls(&k->r_add, tau_add, la);
        const int32x4_t ts = dk_mve_tau_ls(&k->r_sub, tau_sub, ls);
        const int8_t *rp = r + c;
        int8_t *op = out + c;
        if (shortcut) {
            const int8_t *sp = shortcut + c;
            for (i = 0; i < positions; ++i) {
                const int32x4_t y = dk_shrink_mve_y(k, dk_mve_ld(rp, p, full), ta, tau_add, ts, tau_sub, a_lo, m_hi);
                const int32x4_t sc = dk_mve_ld(sp, p, full);
                dk_mve_st(op, dk_mve_out_ls(dk_mve_sum_ls(y, &k->y_in, dk_mve_lo(&k->y_out), sc, &k->sc_in, -128,
                                                          k->z_out.scale.left - 1),
                                            &k->z_out), p, full);
                rp += channels;
                sp += channels;
                op += channels;
            }
        } else {
            for (i = 0; i < positions; ++i) {
                dk_mve_st(op, dk_shrink_mve_y(k, dk_mve_ld(rp, p, full), ta, tau_add, ts, tau_sub, a_lo, m_hi), p,
                          full);
                rp += channels;
                op += channels;
            }
        }
    }
}

/* The last stage of dk_channel_affine_s8_inline: y = (x * scale[c]) + shift[c]; x * k + x_offset
 * * k already shifted for u's output, u's bare side one VMLA on a per-group constant */
DK_INLINE void dk_channel_affine_mve(const dk_ew_output *u_out, const dk_ew_input *u_in,
                                     const dk_ew_input *b_in, const dk_ew_output *y_out, int32_t x_offset,
                                     int32_t k_offset, int32_t positions, int32_t channels, const int8_t *x,
                                     const int8_t *scale, const int8_t *shift, int8_t *out)
{
    const int32_t ly = y_out->scale.left - 1;
    const int32_t full = (channels & 3) == 0;
    int32_t c, i;
    for (c = 0; c < channels; c += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)(channels - c));
        const int32x4_t k = dk_mve_shl(dk_mve_addn(vldrbq_z_s32(scale + c, p), k_offset), u_out->scale.left - 1);
        const int32x4_t kx = vmulq_n_s32(k, x_offset);
        const int32x4_t b = dk_mve_scale(vldrbq_z_s32(shift + c, p), b_in);
        const int32x4_t bl = dk_mve_tau_ls(u_in, b, ly);
        const int8_t *xp = x + c;
        int8_t *op = out + c;
        for (i = 0; i < positions; ++i) {
            const int32x4_t u = dk_mve_out_ls(vaddq_s32(kx, vmulq_s32(dk_mve_ld(xp, p, full), k)), u_out);
            dk_mve_st(op, dk_mve_out_ls(dk_mve_r_plus_ls(u, u_in, dk_mve_lo(u_out), bl, b, ly), y_out), p, full);
            xp += channels;
            op += channels;
        }
    }
}

/* one vector of dk_add_same_s8_inline */
DK_INLINE int32x4_t dk_add_same_mve_v(const dk_ew_input *in1, const dk_ew_input *in2, const dk_ew_output *out,
                                      int32x4_t a, int32x4_t b, int32_t subtract)
{
    if (subtract) {
        return dk_mve_out(vsubq_s32(dk_mve_scale(a, in1), dk_mve_scale(b, in2)), out);
    }
    return dk_mve_out_ls(dk_mve_sum_ls(a, in1, -128, b, in2, -128, out->scale.left - 1), out);
}

/* dk_add_same_s8_inline: size elements, 4 per vector unpredicated, the last 1-3 predicated */
DK_INLINE void dk_add_same_mve(const dk_ew_input *in1, const dk_ew_input *in2, const dk_ew_output *out,
                               int32_t size, const int8_t *input1, const int8_t *input2, int8_t *output,
                               int32_t subtract)
{
    const int32_t whole = size & ~3;
    int32_t i;
    for (i = 0; i < whole; i += 4) {
        vstrbq_s32(output + i, dk_add_same_mve_v(in1, in2, out, vldrbq_s32(input1 + i), vldrbq_s32(input2 + i),
                                                 subtract));
    }
    if (i < size) {
        const mve_pred16_t p = vctp32q((uint32_t)(size - i));
        const int32x4_t a = vldrbq_z_s32(input1 + i, p), b = vldrbq_z_s32(input2 + i, p);
        vstrbq_p_s32(output + i, dk_add_same_mve_v(in1, in2, out, a, b, subtract), p);
    }
}

#endif /* DK_USE_MVE */

#endif /* DK_EW_FUSED_MVE_H */
