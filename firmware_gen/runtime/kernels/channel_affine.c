/*
 * channel_affine.c - a batch normalisation the converter left as two operators, fused:
 *
 *     u = MUL(x, scale)        scale a constant per channel
 *     y = ADD(u, shift)        shift a constant per channel, fused activation (ReLU)
 *
 * u is rounded to int8 exactly as TFLM's MUL does and then added exactly as its ADD does,
 * so y equals the two-operator graph bit for bit. The constants' sides are prepared once
 * per channel. stage 0 stores u, 1 stores y. out may equal x (in place).
 */
#include "ew_fused.h"

void dk_channel_affine_s8(const dk_channel_affine_params *p, int32_t positions,
                          int32_t channels, const int8_t *x, const int8_t *scale,
                          const int8_t *shift, int8_t *out, int32_t stage)
{
    dk_channel_affine_s8_inline(p, positions, channels, x, scale, shift, out, stage);
}
