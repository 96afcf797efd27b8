/*
 * prelu.c - PRELU (int8, alpha broadcast against the input).
 *
 * Non-negative inputs (after the zero point) are rescaled by
 * input_scale / output_scale, negative ones multiplied by the zero-point-
 * corrected alpha and rescaled by input_scale * alpha_scale / output_scale.
 */
#include "broadcast.h"
#include "fixedpoint.h"

static void prelu_row(const void *ctx, int32_t n, const int8_t *x, int32_t sx,
                      const int8_t *alpha, int32_t sa, int8_t *out)
{
    const dk_prelu_params *p = (const dk_prelu_params *)ctx;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t v = p->input_offset + *x;
        const int32_t y = v >= 0
            ? dk_mbqm(v, p->positive.multiplier, p->positive.shift)
            : dk_mbqm(v * (p->alpha_offset + *alpha), p->negative.multiplier,
                      p->negative.shift);
        out[i] = (int8_t)dk_clamp(y + p->output_offset, -128, 127);
        x += sx;
        alpha += sa;
    }
}

void dk_prelu_s8(const dk_prelu_params *params, const dk_broadcast *bc,
                 const int8_t *input, const int8_t *alpha, int8_t *output)
{
    dk_broadcast_rows(bc, input, alpha, output, prelu_row, params);
}
