/*
 * dequantize.c - DEQUANTIZE from int8 to float32.
 *
 * As TFLM's reference kernel: the scale widened to double, times the int32 difference
 * (q - zero_point), rounded once to float. Each float is stored with memcpy, so the
 * output may be any byte buffer (the arena is int8_t) without aliasing or alignment
 * assumptions. Cores without a double-precision FPU do the product in software (exact
 * IEEE arithmetic all the same).
 */
#include <string.h>

#include "dk.h"

void dk_dequantize_s8_f32(const dk_dequantize_params *params, const int8_t *input,
                          int8_t *output, int32_t size)
{
    const double scale = (double)params->scale;
    const int32_t zero_point = params->zero_point;
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t diff = (int32_t)input[i] - zero_point;
        const float value = (float)(scale * (double)diff);
        memcpy(output + 4 * i, &value, sizeof value);
    }
}
