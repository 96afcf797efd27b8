/*
 * shrink.c - the soft threshold of a residual shrinkage unit as one pass:
 *
 *     a = ADD(r, tau)          tau per channel, broadcast over positions
 *     m = MINIMUM(a, c)        c a constant (the quantized 0)
 *     s = SUB(r, tau), ReLU
 *     y = ADD(s, m)            (either operand order)
 *     z = ADD(y, shortcut)     the residual connection (optional)
 *
 * Each intermediate is still rounded to int8 exactly as the TFLM kernels do, so z equals
 * the five-operator graph bit for bit; it is simply never written to memory. tau's side of
 * the ADD and SUB is rescaled once per channel. `stage` picks what is stored: 0 a, 1 m,
 * 2 s, 3 y, 4 z (the model's debug dump asks for the intermediates one at a time; a normal
 * inference asks for the last). out may equal r or shortcut (element-wise, in place).
 */
#include "ew_fused.h"

void dk_shrink_s8(const dk_shrink_params *p, int32_t positions, int32_t channels,
                  const int8_t *r, const int8_t *tau, const int8_t *shortcut,
                  int8_t *out, int32_t stage)
{
    dk_shrink_s8_inline(p, positions, channels, r, tau, shortcut, out, stage);
}
