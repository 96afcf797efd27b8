/*
 * squared_difference.c - SQUARED_DIFFERENCE (int8, broadcasting).
 *
 * Both inputs plus their offsets, shifted left by left_shift, are rescaled to a common
 * scale (multipliers below one); the int32 difference is squared, requantized to the
 * output scale, offset by the output zero point and clamped to int8.
 */
#include "broadcast.h"
#include "fixedpoint.h"

static void squared_difference_row(const void *ctx, int32_t n, const int8_t *a, int32_t sa,
                                   const int8_t *b, int32_t sb, int8_t *out)
{
    const dk_squared_difference_params *p = (const dk_squared_difference_params *)ctx;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t x1 = dk_mbqm((p->input1_offset + *a) * (1 << p->left_shift),
                                   p->input1.multiplier, p->input1.shift);
        const int32_t x2 = dk_mbqm((p->input2_offset + *b) * (1 << p->left_shift),
                                   p->input2.multiplier, p->input2.shift);
        const int32_t diff = x1 - x2;
        const int32_t y = dk_mbqm(diff * diff, p->output.multiplier, p->output.shift) +
                          p->output_offset;
        out[i] = (int8_t)dk_clamp(y, -128, 127);
        a += sa;
        b += sb;
    }
}

void dk_squared_difference_s8(const dk_squared_difference_params *params, const dk_broadcast *bc,
                              const int8_t *input1, const int8_t *input2, int8_t *output)
{
    dk_broadcast_rows(bc, input1, input2, output, squared_difference_row, params);
}
