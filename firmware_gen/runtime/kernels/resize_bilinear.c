/*
 * resize_bilinear.c - RESIZE_BILINEAR, NHWC int8, TFLM's integer arithmetic.
 *
 * The generator tabulated, per output row and column, the two neighbouring input rows
 * (columns) and the weight w of the second in 1/1024 (the first weighs 1024 - w). Each
 * output is sum(pixel * row weight * column weight) / 2^20, halves rounded away from
 * zero (the division truncates, as C's does). Bounds: w is in [-512, 1023], so each weight
 * pair sums to 1024 with absolute values summing to at most 2048, and |sum| <= 128 * 2048^2
 * = 2^29: int32 holds every partial sum.
 */
#include "dk.h"

void dk_resize_bilinear_s8(const dk_resize_bilinear_params *params, const int8_t *input,
                           int8_t *output)
{
    const int32_t depth = params->depth;
    const int32_t row_bytes = params->input_width * depth;
    const int32_t image_bytes = params->input_height * row_bytes;
    int32_t b, y, x, c;
    for (b = 0; b < params->batches; ++b) {
        const int8_t *image = input + b * image_bytes;
        for (y = 0; y < params->output_height; ++y) {
            const int32_t *r = params->rows + 3 * y;
            const int8_t *top = image + r[0] * row_bytes, *bottom = image + r[1] * row_bytes;
            const int32_t wy1 = r[2], wy0 = 1024 - r[2];
            for (x = 0; x < params->output_width; ++x) {
                const int32_t *q = params->cols + 3 * x;
                const int32_t l = q[0] * depth, rt = q[1] * depth;
                const int32_t wx1 = q[2], wx0 = 1024 - q[2];
                for (c = 0; c < depth; ++c) {
                    const int32_t sum = top[l + c] * wy0 * wx0 + bottom[l + c] * wy1 * wx0
                                      + top[rt + c] * wy0 * wx1 + bottom[rt + c] * wy1 * wx1;
                    const int32_t round = sum > 0 ? (1 << 19) : -(1 << 19);
                    *output++ = (int8_t)((sum + round) / (1 << 20));
                }
            }
        }
    }
}
