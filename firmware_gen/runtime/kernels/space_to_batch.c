/*
 * space_to_batch.c - SPACE_TO_BATCH_ND (int8, NHWC; rank 3 as width 1): bytes copied as
 * they are, as TFLM does.
 *
 * Output batch (dy * block[1] + dx) * B + b holds, at (h, w), input batch b at
 * (h * block[0] + dy - pad_before[0], w * block[1] + dx - pad_before[1]); where that lies
 * outside the input, pad_value (the generator says which byte and why). Each output pixel
 * is one run of `channels` bytes, copied or filled whole.
 */
#include <string.h>

#include "dk.h"

void dk_space_to_batch_s8(const dk_space_to_batch_params *params, const int8_t *input, int8_t *output)
{
    const int32_t *in = params->input_dims, *out = params->output_dims;
    const int32_t channels = in[3];
    int32_t b, h, w;
    for (b = 0; b < out[0]; ++b) {
        const int32_t src_batch = b % in[0], shift = b / in[0];
        const int32_t dy = shift / params->block[1], dx = shift % params->block[1];
        for (h = 0; h < out[1]; ++h) {
            const int32_t y = h * params->block[0] + dy - params->pad_before[0];
            for (w = 0; w < out[2]; ++w) {
                const int32_t x = w * params->block[1] + dx - params->pad_before[1];
                if (y < 0 || y >= in[1] || x < 0 || x >= in[2]) {
                    memset(output, params->pad_value, (size_t)channels);
                } else {
                    memcpy(output, input + ((src_batch * in[1] + y) * in[2] + x) * channels,
                           (size_t)channels);
                }
                output += channels;
            }
        }
    }
}
