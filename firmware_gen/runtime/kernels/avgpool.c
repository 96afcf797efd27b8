/*
 * avgpool.c - AVERAGE_POOL_2D (int8; input and output share quantization).
 *
 * Windows are clipped to the input (padding is not counted); the sum is
 * divided by the number of taps, rounding half away from zero.
 */
#include "fixedpoint.h"

int32_t dk_avgpool_s8(const dk_pool_params *params,
                      const dk_dims *input_dims, const int8_t *input,
                      const dk_dims *output_dims, int8_t *output)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t depth = input_dims->c;
    int32_t batch, oy, ox, c, ky, kx;

    for (batch = 0; batch < input_dims->n; ++batch) {
        const int8_t *in_batch = input + batch * in_h * in_w * depth;
        for (oy = 0; oy < output_dims->h; ++oy) {
            const int32_t y0 = oy * params->stride_h - params->pad_h;
            const int32_t ky_start = y0 < 0 ? -y0 : 0;
            const int32_t ky_end = params->filter_h < in_h - y0
                                       ? params->filter_h : in_h - y0;
            for (ox = 0; ox < output_dims->w; ++ox) {
                const int32_t x0 = ox * params->stride_w - params->pad_w;
                const int32_t kx_start = x0 < 0 ? -x0 : 0;
                const int32_t kx_end = params->filter_w < in_w - x0
                                           ? params->filter_w : in_w - x0;
                const int32_t count = (ky_end > ky_start && kx_end > kx_start)
                    ? (ky_end - ky_start) * (kx_end - kx_start) : 0;
                if (count == 0) {
                    return -1;
                }
                for (c = 0; c < depth; ++c) {
                    int32_t acc = 0;
                    for (ky = ky_start; ky < ky_end; ++ky) {
                        for (kx = kx_start; kx < kx_end; ++kx) {
                            acc += in_batch[((y0 + ky) * in_w + (x0 + kx)) *
                                                depth + c];
                        }
                    }
                    /* C division truncates; bias by half the count first. */
                    acc = acc > 0 ? (acc + count / 2) / count
                                  : (acc - count / 2) / count;
                    *output++ = (int8_t)dk_clamp(acc, params->activation.min,
                                                 params->activation.max);
                }
            }
        }
    }
    return 0;
}
