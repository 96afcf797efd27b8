/*
 * gather.c - an index map: GATHER with constant indices and MIRROR_PAD.
 *
 * Each of the four output axes reads the input at an offset of its own coordinate; the
 * generator wrote those offsets axis after axis (dims[0] of them, then dims[1], ...), so
 * output (i0, i1, i2, i3) is input[o0[i0] + o1[i1] + o2[i2] + o3[i3]]. Bytes are copied
 * as they are (TFLM does not requantize either op).
 */
#include "dk.h"

void dk_index_map_s8(const dk_index_map_params *params, const int8_t *input, int8_t *output)
{
    const int32_t *d = params->dims;
    const int32_t *o0 = params->offsets, *o1 = o0 + d[0], *o2 = o1 + d[1], *o3 = o2 + d[2];
    int32_t i0, i1, i2, i3;
    for (i0 = 0; i0 < d[0]; ++i0) {
        for (i1 = 0; i1 < d[1]; ++i1) {
            for (i2 = 0; i2 < d[2]; ++i2) {
                const int8_t *p = input + o0[i0] + o1[i1] + o2[i2];
                for (i3 = 0; i3 < d[3]; ++i3) {
                    *output++ = p[o3[i3]];
                }
            }
        }
    }
}
