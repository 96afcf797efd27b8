/*
 * depthwise_conv.c - DEPTHWISE_CONV_2D (int8, per-channel weights).
 *
 * Output channel m + c * depth_multiplier reads input channel c only.
 *
 * dk_depthwise_conv_s8_fast (end of file): depth multiplier 1, channels in multiples of 4,
 * on records packed by ops/conv.py (pack_depthwise_fast).
 */
#include "conv1d.h"
#include "fixedpoint.h"

void dk_depthwise_conv_s8(const dk_conv_params *params,
                          const dk_channel_requant *quant,
                          int32_t depth_multiplier,
                          const dk_dims *input_dims, const int8_t *input,
                          const dk_dims *filter_dims, const int8_t *filter,
                          const int32_t *bias,
                          const dk_dims *output_dims, int8_t *output)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    const int32_t k_h = filter_dims->h;
    const int32_t k_w = filter_dims->w;
    const int32_t out_h = output_dims->h;
    const int32_t out_w = output_dims->w;
    const int32_t out_c = output_dims->c;
    const int32_t input_offset = params->input_offset;
    int32_t batch, oy, ox, ic, m, ky, kx;

    for (batch = 0; batch < input_dims->n; ++batch) {
        const int8_t *in_batch = input + batch * in_h * in_w * in_c;
        for (oy = 0; oy < out_h; ++oy) {
            const int32_t y0 = oy * params->stride_h - params->pad_h;
            for (ox = 0; ox < out_w; ++ox) {
                const int32_t x0 = ox * params->stride_w - params->pad_w;
                for (ic = 0; ic < in_c; ++ic) {
                    for (m = 0; m < depth_multiplier; ++m) {
                        const int32_t oc = ic * depth_multiplier + m;
                        int32_t acc = 0;
                        for (ky = 0; ky < k_h; ++ky) {
                            const int32_t iy = y0 + ky * params->dilation_h;
                            if (iy < 0 || iy >= in_h) {
                                continue;
                            }
                            for (kx = 0; kx < k_w; ++kx) {
                                const int32_t ix = x0 + kx * params->dilation_w;
                                if (ix < 0 || ix >= in_w) {
                                    continue;
                                }
                                acc += filter[(ky * k_w + kx) * out_c + oc] *
                                       (in_batch[(iy * in_w + ix) * in_c + ic] +
                                        input_offset);
                            }
                        }
                        output[((batch * out_h + oy) * out_w + ox) * out_c + oc] =
                            dk_conv_out(params, quant, bias, oc, acc);
                    }
                }
            }
        }
    }
}

/*
 * The fast variant. Per output pixel, one pointer per tap: into the input, or to a row of the
 * input zero point (scratch) where the tap is padding; the generator folded
 * input_offset * sum(w) into the bias, so a padding tap adds w * zp = -w * input_offset, i.e.
 * nothing, and every tap is a plain product. Then per group of 4 channels, per tap: one word
 * of 4 input channels, SXTB16 and SXTB16 ROR 8 to the int16 pairs (c0, c2) (c1, c3), the
 * tap's two weight words (int16, the same order, stored times 2) and SMLABB / SMLATT per
 * channel; the requantization is dk_conv1d_s8_fast's (conv1d.h, dk_c1f_out).
 *
 * Record of a group (int16 units): bias[4] (int32, (bias + input_offset * sum(w)) * 2) |
 * k_h * k_w taps x (w c0, w c2, w c1, w c3) * 2 | per channel multiplier, rounding, e (int32).
 */
#define DK_DW_MAX_TAPS 25

/* One output pixel, all channels: tap[t] points at the pixel's input (or zero-point) channels */
DK_INLINE void dk_dw_pixel(const int8_t *const *tap, const int16_t *packed, int32_t taps, int32_t in_c,
                           int32_t lo, int32_t hi, int8_t *output)
{
    const int32_t record = 8 + 4 * taps + 24;
    const int16_t *rec = packed;
    int32_t c, t;
    for (c = 0; c < in_c; c += 4) {
        const int16_t *w = rec + 8;
        const int16_t *rq = rec + 8 + 4 * taps;
        int32_t a0 = (int32_t)dk_c1_load32(rec), a1 = (int32_t)dk_c1_load32(rec + 2);
        int32_t a2 = (int32_t)dk_c1_load32(rec + 4), a3 = (int32_t)dk_c1_load32(rec + 6);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 9
#endif
        for (t = 0; t < taps; ++t) {
            const uint32_t v = dk_c1_load32(tap[t] + c);
            const uint32_t x02 = dk_sxtb16(v), x13 = dk_sxtb16_ror8(v);
            const uint32_t w02 = dk_c1_load32(w + 4 * t), w13 = dk_c1_load32(w + 4 * t + 2);
            a0 = dk_smlabb(x02, w02, a0);
            a2 = dk_smlatt(x02, w02, a2);
            a1 = dk_smlabb(x13, w13, a1);
            a3 = dk_smlatt(x13, w13, a3);
        }
        output[c] = dk_c1f_out(a0, rq, lo, hi);
        output[c + 1] = dk_c1f_out(a1, rq + 6, lo, hi);
        output[c + 2] = dk_c1f_out(a2, rq + 12, lo, hi);
        output[c + 3] = dk_c1f_out(a3, rq + 18, lo, hi);
        rec += record;
    }
}

void dk_depthwise_conv_s8_fast(const dk_dw_fast_params *p, const int8_t *input, const int16_t *packed,
                               int8_t *scratch, int8_t *output)
{
    const int32_t in_c = p->in_c;
    const int32_t taps = p->k_h * p->k_w;
    const int32_t lo = p->activation.min, hi = p->activation.max;
    const int8_t *tap[DK_DW_MAX_TAPS];
    int32_t oy = 0, ox = 0, pix, ky, kx, t;
    memset(scratch, (int)p->zero_point, (size_t)in_c);
    for (pix = 0; pix < p->pixels; ++pix) {
        const int32_t y0 = oy * p->stride_h - p->pad_h;
        const int32_t x0 = ox * p->stride_w - p->pad_w;
        for (ky = 0, t = 0; ky < p->k_h; ++ky) {
            const int32_t iy = y0 + ky * p->dilation_h;
            for (kx = 0; kx < p->k_w; ++kx, ++t) {
                const int32_t ix = x0 + kx * p->dilation_w;
                tap[t] = iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w
                             ? scratch : input + (iy * p->in_w + ix) * in_c;
            }
        }
        if (taps == 9 && lo == -128 && hi == 127) {   /* 3 x 3, no clamp inside int8: the tap */
            dk_dw_pixel(tap, packed, 9, in_c, -128, 127, output);   /* loop unrolled, SSAT only */
        } else if (taps == 9) {
            dk_dw_pixel(tap, packed, 9, in_c, lo, hi, output);
        } else {
            dk_dw_pixel(tap, packed, taps, in_c, lo, hi, output);
        }
        output += in_c;
        if (++ox == p->out_w) {
            ox = 0;
            ++oy;
        }
    }
}
