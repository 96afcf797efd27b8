/*
 * pad.c - PAD / PADV2 (int8; input and output share quantization).
 *
 * The input, seen as four dimensions, is copied into the output at offset `before`
 * in each dimension; every other output element is `value` (the output zero point,
 * or PADV2's constant). Rows of the innermost dimension are copied whole.
 */
#include <string.h>

#include "dk.h"

void dk_pad_s8(const dk_pad_params *params, const int8_t *input, int8_t *output)
{
    const int32_t *in = params->input_dims;
    int32_t out[4];
    int32_t d, a, b, c;
    for (d = 0; d < 4; ++d) {
        out[d] = params->before[d] + in[d] + params->after[d];
    }
    memset(output, params->value, (size_t)out[0] * (size_t)out[1] * (size_t)out[2] * (size_t)out[3]);
    for (a = 0; a < in[0]; ++a) {
        for (b = 0; b < in[1]; ++b) {
            for (c = 0; c < in[2]; ++c) {
                const int32_t src = ((a * in[1] + b) * in[2] + c) * in[3];
                const int32_t dst = (((a + params->before[0]) * out[1] + b + params->before[1]) * out[2]
                                     + c + params->before[2]) * out[3] + params->before[3];
                memcpy(output + dst, input + src, (size_t)in[3]);
            }
        }
    }
}
