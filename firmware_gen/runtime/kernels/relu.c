/*
 * relu.c - RELU-family operators as standalone ops (int8): the input is
 * always rescaled to the output quantization, then clamped to the range
 * the activation allows (quant.prepare_relu).
 */
#include "fixedpoint.h"

void dk_relu_s8(const dk_relu_params *params, const int8_t *input,
                int8_t *output, int32_t size)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t y =
            params->output_zero_point +
            dk_mbqm(input[i] - params->input_zero_point,
                    params->output.multiplier, params->output.shift);
        output[i] = (int8_t)dk_clamp(y, params->activation.min,
                                     params->activation.max);
    }
}
