/*
 * ew_fused.h - the fused element-wise kernels (shrink.c, channel_affine.c, add_fast.c) as
 * DK_INLINE functions. The .c files instantiate them as the library functions of dk.h;
 * generated model.c calls the *_inline versions with its static const parameters, so the
 * compiler folds every shift, offset and clamp into immediates for that one layer (a
 * generation-time specialisation that needs no code generator of its own).
 */
#ifndef DK_EW_FUSED_H
#define DK_EW_FUSED_H

#include "ew_fast.h"

#if defined(__GNUC__)
#define DK_SPECIALISE DK_INLINE __attribute__((always_inline))
#else
#define DK_SPECIALISE static inline
#endif

typedef struct {
    dk_ew_input r_add, r_sub, s_in, m_in, y_in, sc_in;
    dk_ew_output a_out, s_out, y_out, z_out;
    int32_t min_value;
} dk_shrink_ctx;

#include "ew_fused_mve.h"   /* Helium variants (DK_USE_MVE), hooked in at the top of each kernel */

DK_INLINE int32_t dk_shrink_one(const dk_shrink_ctx *k, int32_t r, int32_t tau_add,
                                 int32_t tau_sub, const int8_t *sc, int32_t stage)
{
    const int32_t a = dk_ew_out(dk_ew_scale(r, &k->r_add) + tau_add, &k->a_out);
    const int32_t m = dk_min32(a, k->min_value);
    const int32_t s = dk_ew_out(dk_ew_scale(r, &k->r_sub) - tau_sub, &k->s_out);
    int32_t y;
    if (stage < 3) {
        return stage == 0 ? a : (stage == 1 ? m : s);
    }
    y = dk_ew_add2(s, &k->s_in, m, &k->m_in, &k->y_out, 0);
    if (stage == 3 || !sc) {
        return y;
    }
    return dk_ew_add2(y, &k->y_in, *sc, &k->sc_in, &k->z_out, 0);
}

/*
 * The soft threshold one-sided. With R = r on the common scale and x = R + tau_add:
 * - x >= 0: a = out_a(x) >= out_a(0) = clamp(zp_a) >= min_value, so m = min_value;
 * - x < 0: R < -tau_add <= 0, so R - tau_sub < 0 and s = out_s(<0) = its ReLU floor.
 * So each element needs either a or s, never both (one requantisation fewer, and no MINIMUM
 * on the x >= 0 side). This holds when the ADD and the SUB put r on the same scale, tau's
 * scaled values are >= 0 (checked per channel; tau's zero point is its minimum in the DRSN),
 * clamp(zp_a) >= min_value and the SUB's lower clamp is >= its zero point (a ReLU).
 * Rescaling and clamping are monotone and map 0 to the zero point, which gives both claims.
 */
DK_INLINE int32_t dk_shrink_split_ok(const dk_shrink_ctx *k)
{
    return k->r_add.offset == k->r_sub.offset && k->r_add.scale.multiplier == k->r_sub.scale.multiplier
        && k->r_add.scale.left == k->r_sub.scale.left && k->r_add.scale.right == k->r_sub.scale.right
        && dk_clamp8(k->a_out.zero_point, k->a_out.min, k->a_out.max) >= k->min_value
        && k->s_out.min >= k->s_out.zero_point;
}

/* y (and z with a shortcut) of one channel in the one-sided form; m_c, s_c: the scaled
 * min_value and ReLU floor, the sides that are constant. */
DK_INLINE void dk_shrink_split(const dk_shrink_ctx *k, int32_t positions, int32_t channels,
                               const int8_t *rp, int32_t tau_add, int32_t tau_sub, int32_t m_c,
                               int32_t s_c, const int8_t *sp, int8_t *op)
{
    int32_t i;
    /* every sum is formed already shifted for its output (dk_ew_out_ls) */
    const int32_t la = k->a_out.scale.left, ls = k->s_out.scale.left, ly = k->y_out.scale.left;
    const int32_t ta = dk_shl(tau_add, la), ts = dk_shl(tau_sub, ls);
    const int32_t mc = dk_shl(m_c, ly), sc = dk_shl(s_c, ly);
    for (i = 0; i < positions; ++i) {
        const int32_t r = *rp;
        int32_t y;
        if (dk_ew_scale_ls(r, &k->r_add, la) + ta >= 0) {
            y = dk_ew_out_ls(dk_ew_scale_ls(r, &k->r_sub, ls) - ts, &k->s_out);
            y = dk_ew_scale_ls(y, &k->s_in, ly) + mc;
        } else {
            y = dk_ew_out_ls(dk_ew_scale_ls(r, &k->r_add, la) + ta, &k->a_out);
            y = sc + dk_ew_scale_ls(dk_min32(y, k->min_value), &k->m_in, ly);
        }
        y = dk_ew_out_ls(y, &k->y_out);
        if (sp) {
            y = dk_ew_add2(y, &k->y_in, *sp, &k->sc_in, &k->z_out, 0);
            sp += channels;
        }
        *op = (int8_t)y;
        rp += channels;
        op += channels;
    }
}

DK_SPECIALISE void dk_shrink_s8_inline(const dk_shrink_params *p, int32_t positions, int32_t channels,
                  const int8_t *r, const int8_t *tau, const int8_t *shortcut,
                  int8_t *out, int32_t stage)
{
    dk_shrink_ctx k;
    int32_t c, i, split, m_c, s_c;
    const int32_t last = shortcut ? 4 : 3;
    k.r_add = dk_ew_input1(&p->add);
    k.r_sub = dk_ew_input1(&p->sub);
    k.a_out = dk_ew_add_output(&p->add);
    k.s_out = dk_ew_add_output(&p->sub);
    k.min_value = p->min_value;
    k.s_in = p->sum_s_first ? dk_ew_input1(&p->sum) : dk_ew_input2(&p->sum);
    k.m_in = p->sum_s_first ? dk_ew_input2(&p->sum) : dk_ew_input1(&p->sum);
    k.y_out = dk_ew_add_output(&p->sum);
    k.y_in = p->res_y_first ? dk_ew_input1(&p->res) : dk_ew_input2(&p->res);
    k.sc_in = p->res_y_first ? dk_ew_input2(&p->res) : dk_ew_input1(&p->res);
    k.z_out = dk_ew_add_output(&p->res);
    if (stage > last) {
        stage = last;
    }
#if DK_USE_MVE
    if (stage == last) {
        dk_shrink_mve(&k, &p->add, &p->sub, positions, channels, r, tau, shortcut, out);
        return;
    }
#endif
    split = dk_shrink_split_ok(&k);
    m_c = dk_ew_scale(k.min_value, &k.m_in);
    s_c = dk_ew_scale(k.s_out.min, &k.s_in);
    for (c = 0; c < channels; ++c) {
        const dk_ew_input t_add = dk_ew_input2(&p->add);
        const dk_ew_input t_sub = dk_ew_input2(&p->sub);
        const int32_t tau_add = dk_ew_scale(tau[c], &t_add);
        const int32_t tau_sub = dk_ew_scale(tau[c], &t_sub);
        const int8_t *rp = r + c;
        const int8_t *sp = shortcut ? shortcut + c : 0;
        int8_t *op = out + c;
        if (stage == last && split && tau_add >= 0 && tau_sub >= 0) {
            dk_shrink_split(&k, positions, channels, rp, tau_add, tau_sub, m_c, s_c, sp, op);
        } else if (stage == last && DK_CONSTANT_P(stage)) {
            /* the inference itself (generated code, stage a constant): one specialised loop
             * per variant; the library function (debug dump, host tests) takes the loop
             * below, the same steps, in a third of the code */
            if (sp) {
                for (i = 0; i < positions; ++i) {
                    *op = (int8_t)dk_shrink_one(&k, *rp, tau_add, tau_sub, sp, 4);
                    rp += channels;
                    sp += channels;
                    op += channels;
                }
            } else {
                for (i = 0; i < positions; ++i) {
                    *op = (int8_t)dk_shrink_one(&k, *rp, tau_add, tau_sub, 0, 3);
                    rp += channels;
                    op += channels;
                }
            }
        } else {
            for (i = 0; i < positions; ++i) {
                *op = (int8_t)dk_shrink_one(&k, *rp, tau_add, tau_sub, sp, stage);
                rp += channels;
                if (sp) {
                    sp += channels;
                }
                op += channels;
            }
        }
    }
}

/* y = ADD(MUL(x, k), b) of one element; k2, c2: k and x_offset * k shifted for u's output */
DK_INLINE int32_t dk_affine_one(int32_t x, int32_t k2, int32_t c2, int32_t b, const dk_ew_output *u_out,
                                const dk_ew_input *u_in, const dk_ew_output *y_out)
{
    const int32_t u = dk_ew_out_ls(x * k2 + c2, u_out);
    return dk_ew_out_ls(dk_ew_scale_ls_b(u, u_in, y_out->scale.left, b), y_out);
}

DK_SPECIALISE void dk_channel_affine_s8_inline(const dk_channel_affine_params *p, int32_t positions,
                          int32_t channels, const int8_t *x, const int8_t *scale,
                          const int8_t *shift, int8_t *out, int32_t stage)
{
    const dk_ew_output u_out = dk_ew_mul_output(&p->mul);
    const dk_ew_input u_in = p->add_u_first ? dk_ew_input1(&p->add) : dk_ew_input2(&p->add);
    const dk_ew_input b_in = p->add_u_first ? dk_ew_input2(&p->add) : dk_ew_input1(&p->add);
    const dk_ew_output y_out = dk_ew_add_output(&p->add);
    const int32_t x_offset = p->mul_x_first ? p->mul.input1_offset : p->mul.input2_offset;
    const int32_t k_offset = p->mul_x_first ? p->mul.input2_offset : p->mul.input1_offset;
    int32_t c, i;
#if DK_USE_MVE
    if (stage != 0) {
        dk_channel_affine_mve(&u_out, &u_in, &b_in, &y_out, x_offset, k_offset, positions, channels, x,
                              scale, shift, out);
        return;
    }
#endif
    for (c = 0; c < channels; ++c) {
        const int32_t k = scale[c] + k_offset;
        const int32_t b = dk_ew_scale(shift[c], &b_in);
        /* (x + x_offset) * k, shifted for u's output: one MLA */
        const int32_t k2 = dk_shl(k, u_out.scale.left), c2 = x_offset * k2;
        const int8_t *xp = x + c;
        int8_t *op = out + c;
        if (stage == 0) {
            for (i = 0; i < positions; ++i) {
                *op = (int8_t)dk_ew_out((*xp + x_offset) * k, &u_out);
                xp += channels;
                op += channels;
            }
        } else {
            /* two positions a pass: the loop's counting is shared (generated code only,
             * where the parameters are constants and each copy is short) */
            for (i = 0; DK_CONSTANT_P(p->add.left_shift) && i + 1 < positions; i += 2) {
                op[0] = (int8_t)dk_affine_one(xp[0], k2, c2, b, &u_out, &u_in, &y_out);
                op[channels] = (int8_t)dk_affine_one(xp[channels], k2, c2, b, &u_out, &u_in, &y_out);
                xp += 2 * channels;
                op += 2 * channels;
            }
            for (; i < positions; ++i) {
                *op = (int8_t)dk_affine_one(*xp, k2, c2, b, &u_out, &u_in, &y_out);
                xp += channels;
                op += channels;
            }
        }
    }
}

DK_SPECIALISE void dk_add_same_s8_inline(const dk_add_params *params, int32_t size, const int8_t *input1,
                    const int8_t *input2, int8_t *output, int32_t subtract)
{
    const dk_ew_input in1 = dk_ew_input1(params);
    const dk_ew_input in2 = dk_ew_input2(params);
    const dk_ew_output out = dk_ew_add_output(params);
    int32_t i;
#if DK_USE_MVE
    dk_add_same_mve(&in1, &in2, &out, size, input1, input2, output, subtract);
    return;
#endif
    if (subtract) {
        for (i = 0; i < size; ++i) {
            output[i] = (int8_t)dk_ew_add2(input1[i], &in1, input2[i], &in2, &out, 1);
        }
    } else {
        /* two elements a pass: the loop's counting is shared (the residual ADDs; in the
         * generated code only, where the parameters are constants and each copy is short) */
        for (i = 0; DK_CONSTANT_P(params->left_shift) && i + 1 < size; i += 2) {
            output[i] = (int8_t)dk_ew_add2(input1[i], &in1, input2[i], &in2, &out, 0);
            output[i + 1] = (int8_t)dk_ew_add2(input1[i + 1], &in1, input2[i + 1], &in2, &out, 0);
        }
        for (; i < size; ++i) {
            output[i] = (int8_t)dk_ew_add2(input1[i], &in1, input2[i], &in2, &out, 0);
        }
    }
}

#endif /* DK_EW_FUSED_H */
