/*
 * depthwise_conv.c - DEPTHWISE_CONV_2D (int8, per-channel weights).
 *
 * Output channel m + c * depth_multiplier reads input channel c only.
 */
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
                        const int32_t q = quant->per_channel ? oc : 0;
                        int32_t acc = 0;
                        int32_t y;
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
                        if (bias) {
                            acc = dk_wrap_add(acc, bias[oc]);
                        }
                        y = dk_mbqm(acc, quant->multiplier[q],
                                    quant->shift[q]) +
                            params->output_offset;
                        output[((batch * out_h + oy) * out_w + ox) * out_c +
                               oc] = (int8_t)dk_clamp(y, params->activation.min,
                                                      params->activation.max);
                    }
                }
            }
        }
    }
}
