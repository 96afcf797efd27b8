/*
 * requantize.c - QUANTIZE from int8 to int8 (a change of scale and/or
 * zero point).
 */
#include "fixedpoint.h"

void dk_requantize_s8(const dk_requantize_params *params, const int8_t *input,
                      int8_t *output, int32_t size)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t y =
            dk_mbqm(input[i] - params->input_zero_point,
                    params->output.multiplier, params->output.shift) +
            params->output_zero_point;
        output[i] = (int8_t)dk_clamp(y, -128, 127);
    }
}
