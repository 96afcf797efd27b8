/*
 * broadcast.h - iteration over a dk_broadcast plan, shared by the binary
 * elementwise kernels.
 *
 * The plan's three outer dimensions are walked here; the innermost
 * dimension is handed to a per-kernel row function together with the two
 * input strides (0 or 1 in practice), so the per-element work stays in a
 * tight loop and the indirect call happens once per row.
 */
#ifndef DK_BROADCAST_H
#define DK_BROADCAST_H

#include <stdint.h>

#include "dk.h"

typedef void (*dk_row_fn)(const void *ctx, int32_t n,
                          const int8_t *in1, int32_t stride1,
                          const int8_t *in2, int32_t stride2, int8_t *out);

static inline void dk_broadcast_rows(const dk_broadcast *bc,
                                     const int8_t *input1,
                                     const int8_t *input2, int8_t *output,
                                     dk_row_fn row, const void *ctx)
{
    const int32_t *dims = bc->out_dims;
    const int32_t *s1 = bc->in1_strides;
    const int32_t *s2 = bc->in2_strides;
    int32_t i0, i1, i2;
    for (i0 = 0; i0 < dims[0]; ++i0) {
        for (i1 = 0; i1 < dims[1]; ++i1) {
            for (i2 = 0; i2 < dims[2]; ++i2) {
                const int8_t *a = input1 + i0 * s1[0] + i1 * s1[1] + i2 * s1[2];
                const int8_t *b = input2 + i0 * s2[0] + i1 * s2[1] + i2 * s2[2];
                row(ctx, dims[3], a, s1[3], b, s2[3], output);
                output += dims[3];
            }
        }
    }
}

#endif /* DK_BROADCAST_H */
