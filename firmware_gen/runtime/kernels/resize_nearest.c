/*
 * resize_nearest.c - RESIZE_NEAREST_NEIGHBOR, NHWC int8.
 *
 * The generator computed which input row and column each output row and column copies
 * (TFLM's float arithmetic, align_corners and half_pixel_centers included); here each
 * output pixel is a copy of `depth` bytes.
 */
#include <string.h>

#include "dk.h"

void dk_resize_nearest_s8(const dk_resize_nearest_params *params, const int8_t *input,
                          int8_t *output)
{
    const int32_t depth = params->depth;
    const int32_t row_bytes = params->input_width * depth;
    const int32_t image_bytes = params->input_height * row_bytes;
    int32_t b, y, x;
    for (b = 0; b < params->batches; ++b) {
        const int8_t *image = input + b * image_bytes;
        for (y = 0; y < params->output_height; ++y) {
            const int8_t *row = image + params->rows[y] * row_bytes;
            for (x = 0; x < params->output_width; ++x) {
                memcpy(output, row + params->cols[x] * depth, (size_t)depth);
                output += depth;
            }
        }
    }
}
