/*
 * strided_slice.c - STRIDED_SLICE: copy a strided window of the input.
 *
 * The generator resolved begin/end/strides and the masks into a first input element and
 * four (count, step) loops, outermost first; steps may be negative (reversed axes).
 */
#include "dk.h"

void dk_strided_slice_s8(const dk_strided_slice_params *params, const int8_t *input,
                         int8_t *output)
{
    const int32_t *count = params->count, *step = params->step;
    int32_t i0, i1, i2, i3;
    for (i0 = 0; i0 < count[0]; ++i0) {
        const int8_t *p0 = input + params->start + i0 * step[0];
        for (i1 = 0; i1 < count[1]; ++i1) {
            const int8_t *p1 = p0 + i1 * step[1];
            for (i2 = 0; i2 < count[2]; ++i2) {
                const int8_t *p2 = p1 + i2 * step[2];
                for (i3 = 0; i3 < count[3]; ++i3) {
                    *output++ = p2[i3 * step[3]];
                }
            }
        }
    }
}
