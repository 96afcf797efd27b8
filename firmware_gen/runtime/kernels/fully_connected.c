/*
 * fully_connected.c - FULLY_CONNECTED (int8 weights, int32 bias).
 *
 * Per-tensor and per-channel weight quantization differ only in which
 * requantization each output channel uses.
 */
#include "fixedpoint.h"
#include "fully_connected_mve.h"   /* Helium variant (DK_USE_MVE) */

void dk_fully_connected_s8(const dk_fc_params *params,
                           const dk_channel_requant *quant,
                           int32_t batches, int32_t accum_depth,
                           int32_t out_depth,
                           const int8_t *input, const int8_t *weights,
                           const int32_t *bias, int8_t *output)
{
    const int32_t input_offset = params->input_offset;
    const int32_t filter_offset = params->filter_offset;
    int32_t b, o, d;
#if DK_USE_MVE
    dk_fully_connected_s8_mve(params, quant, batches, accum_depth, out_depth, input, weights, bias, output);
    return;
#endif
    for (b = 0; b < batches; ++b) {
        const int8_t *x = input + b * accum_depth;
        for (o = 0; o < out_depth; ++o) {
            const int8_t *w = weights + o * accum_depth;
            const int32_t q = quant->per_channel ? o : 0;
            int32_t acc = 0;
            int32_t y;
            for (d = 0; d < accum_depth; ++d) {
                acc += (w[d] + filter_offset) * (x[d] + input_offset);
            }
            if (bias) {
                acc = dk_wrap_add(acc, bias[o]);
            }
            y = dk_mbqm(acc, quant->multiplier[q], quant->shift[q]) +
                params->output_offset;
            *output++ = (int8_t)dk_clamp(y, params->activation.min,
                                         params->activation.max);
        }
    }
}
