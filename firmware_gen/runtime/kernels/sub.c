/*
 * sub.c - SUB (int8, broadcasting, fused activation).
 *
 * Same arithmetic and parameters as ADD (see add.c), with the rescaled
 * second input subtracted.
 */
#include "broadcast.h"
#include "fixedpoint.h"

static void sub_row(const void *ctx, int32_t n, const int8_t *a, int32_t sa,
                    const int8_t *b, int32_t sb, int8_t *out)
{
    const dk_add_params *p = (const dk_add_params *)ctx;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t x1 = dk_wrap_shl(p->input1_offset + *a, p->left_shift);
        const int32_t x2 = dk_wrap_shl(p->input2_offset + *b, p->left_shift);
        const int32_t s1 = dk_mbqm(x1, p->input1.multiplier, p->input1.shift);
        const int32_t s2 = dk_mbqm(x2, p->input2.multiplier, p->input2.shift);
        const int32_t diff = dk_wrap_sub(s1, s2);
        const int32_t y = dk_mbqm(diff, p->output.multiplier, p->output.shift) +
                          p->output_offset;
        out[i] = (int8_t)dk_clamp(y, p->activation.min, p->activation.max);
        a += sa;
        b += sb;
    }
}

void dk_sub_s8(const dk_add_params *params, const dk_broadcast *bc,
               const int8_t *input1, const int8_t *input2, int8_t *output)
{
    dk_broadcast_rows(bc, input1, input2, output, sub_row, params);
}
