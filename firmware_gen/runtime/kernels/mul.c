/*
 * mul.c - MUL (int8, broadcasting, fused activation).
 *
 * The product of the two zero-point-corrected inputs is rescaled once by
 * input1_scale * input2_scale / output_scale (quant.prepare_mul).
 */
#include "broadcast.h"
#include "fixedpoint.h"
#include "mul_mve.h"   /* Helium rows (DK_USE_MVE) */

static void mul_row(const void *ctx, int32_t n, const int8_t *a, int32_t sa,
                    const int8_t *b, int32_t sb, int8_t *out)
{
    const dk_mul_params *p = (const dk_mul_params *)ctx;
    int32_t i;
#if DK_USE_MVE
    if (dk_mul_row_mve(p, n, a, sa, b, sb, out)) {
        return;
    }
#endif
    for (i = 0; i < n; ++i) {
        const int32_t product =
            (p->input1_offset + *a) * (p->input2_offset + *b);
        const int32_t y =
            dk_mbqm(product, p->output.multiplier, p->output.shift) +
            p->output_offset;
        out[i] = (int8_t)dk_clamp(y, p->activation.min, p->activation.max);
        a += sa;
        b += sb;
    }
}

void dk_mul_s8(const dk_mul_params *params, const dk_broadcast *bc,
               const int8_t *input1, const int8_t *input2, int8_t *output)
{
    dk_broadcast_rows(bc, input1, input2, output, mul_row, params);
}
