/*
 * transpose_conv.c - TRANSPOSE_CONV (int8, per-channel weights, int32 bias).
 *
 * Input pixel (iy, ix) through filter tap (ky, kx) lands on output pixel
 * (iy * stride_h - pad_h + ky, ix * stride_w - pad_w + kx). TFLM scatters
 * every input pixel that way into an int32 buffer; here each output pixel
 * gathers the taps that land on it, i.e. iy = (oy + pad_h - ky) / stride_h
 * when that divides exactly and lies in the input: the same terms, the same
 * int32 sum, no buffer. Then bias, per-channel requantization and the int8
 * clamp, as CONV_2D. The filter is [out_c, kh, kw, in_c].
 */
#include "fixedpoint.h"

void dk_transpose_conv_s8(const dk_conv_params *params, const dk_channel_requant *quant,
                          const dk_dims *input_dims, const int8_t *input,
                          const dk_dims *filter_dims, const int8_t *filter,
                          const int32_t *bias,
                          const dk_dims *output_dims, int8_t *output)
{
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t out_h = output_dims->h, out_w = output_dims->w, out_c = output_dims->c;
    const int32_t s_h = params->stride_h, s_w = params->stride_w;
    const int32_t input_offset = params->input_offset;
    int32_t batch, oy, ox, oc, ky, kx, ic;

    for (batch = 0; batch < input_dims->n; ++batch) {
        const int8_t *in_batch = input + batch * in_h * in_w * in_c;
        for (oy = 0; oy < out_h; ++oy) {
            for (ox = 0; ox < out_w; ++ox) {
                for (oc = 0; oc < out_c; ++oc) {
                    const int8_t *w_oc = filter + oc * k_h * k_w * in_c;
                    int32_t acc = 0;
                    for (ky = 0; ky < k_h; ++ky) {
                        const int32_t ty = oy + params->pad_h - ky;
                        int32_t iy;
                        if (ty < 0 || ty % s_h != 0) {
                            continue;
                        }
                        iy = ty / s_h;
                        if (iy >= in_h) {
                            continue;
                        }
                        for (kx = 0; kx < k_w; ++kx) {
                            const int32_t tx = ox + params->pad_w - kx;
                            int32_t ix;
                            const int8_t *px;
                            const int8_t *pw;
                            if (tx < 0 || tx % s_w != 0) {
                                continue;
                            }
                            ix = tx / s_w;
                            if (ix >= in_w) {
                                continue;
                            }
                            px = in_batch + (iy * in_w + ix) * in_c;
                            pw = w_oc + (ky * k_w + kx) * in_c;
                            for (ic = 0; ic < in_c; ++ic) {
                                acc += pw[ic] * (px[ic] + input_offset);
                            }
                        }
                    }
                    *output++ = dk_conv_out(params, quant, bias, oc, acc);
                }
            }
        }
    }
}
