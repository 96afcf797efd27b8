/*
 * add_fast.c - ADD and SUB of two int8 tensors of the same shape (a residual connection),
 * with the short exact rescaling of ew_fast.h: the same results as dk_add_s8 / dk_sub_s8
 * (and TFLM) for int8 operands, in fewer instructions. out may equal either input.
 */
#include "ew_fused.h"

void dk_add_same_s8(const dk_add_params *params, int32_t size, const int8_t *input1,
                    const int8_t *input2, int8_t *output, int32_t subtract)
{
    dk_add_same_s8_inline(params, size, input1, input2, output, subtract);
}
