/*
 * abs.c - ABS (int8). |x - input_zero_point| is rescaled to the output
 * scale only when the scales differ, as in TFLM.
 */
#include "fixedpoint.h"

void dk_abs_s8(const dk_abs_params *params, const int8_t *input,
               int8_t *output, int32_t size)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t centred = input[i] - params->input_zero_point;
        const int32_t magnitude = centred < 0 ? -centred : centred;
        int32_t y;
        if (params->needs_rescale) {
            y = dk_mbqm(magnitude, params->output.multiplier,
                        params->output.shift);
        } else {
            y = magnitude;
        }
        output[i] = (int8_t)dk_clamp(y + params->output_zero_point, -128, 127);
    }
}
