/*
 * transpose.c - TRANSPOSE (int8; data moved, quantization unchanged).
 *
 * The input seen as four dimensions; output dimension d is input dimension
 * perm[d]. The output is written in order, each element read through the
 * input's strides.
 */
#include "dk.h"

void dk_transpose_s8(const dk_transpose_params *params, const int8_t *input, int8_t *output)
{
    const int32_t *in = params->input_dims;
    const int32_t *perm = params->perm;
    int32_t in_stride[4], stride[4], out[4];
    int32_t d, a, b, c, e;
    in_stride[3] = 1;
    for (d = 2; d >= 0; --d) {
        in_stride[d] = in_stride[d + 1] * in[d + 1];
    }
    for (d = 0; d < 4; ++d) {
        out[d] = in[perm[d]];
        stride[d] = in_stride[perm[d]];
    }
    for (a = 0; a < out[0]; ++a) {
        for (b = 0; b < out[1]; ++b) {
            for (c = 0; c < out[2]; ++c) {
                const int8_t *row = input + a * stride[0] + b * stride[1] + c * stride[2];
                for (e = 0; e < out[3]; ++e) {
                    *output++ = row[e * stride[3]];
                }
            }
        }
    }
}
