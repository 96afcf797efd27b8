/*
 * maximum.c - MAXIMUM (int8, broadcasting). Raw values are compared: TFLM
 * does no rescaling, so inputs and output must share quantization.
 */
#include "broadcast.h"

static void maximum_row(const void *ctx, int32_t n, const int8_t *a,
                        int32_t sa, const int8_t *b, int32_t sb, int8_t *out)
{
    int32_t i;
    (void)ctx;
    for (i = 0; i < n; ++i) {
        out[i] = *a > *b ? *a : *b;
        a += sa;
        b += sb;
    }
}

void dk_maximum_s8(const dk_broadcast *bc, const int8_t *input1,
                   const int8_t *input2, int8_t *output)
{
    dk_broadcast_rows(bc, input1, input2, output, maximum_row, 0);
}
