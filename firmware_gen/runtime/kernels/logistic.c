/*
 * logistic.c - LOGISTIC (int8 in, int8 out with scale 1/256 and zero
 * point -128).
 *
 * Inputs beyond +-input_range_radius saturate directly. Others are rescaled
 * to Q4.27, passed through the fixed-point logistic (fixedpoint.c), and the
 * Q0.31 result is rounded to 1/256 steps.
 */
#include "fixedpoint.h"

#define DK_LOGISTIC_INPUT_INTEGER_BITS 4
/* Q0.31 -> units of 1/256: divide by 2^(31 - 8). */
#define DK_LOGISTIC_OUTPUT_SHIFT 23
#define DK_LOGISTIC_OUTPUT_ZERO_POINT (-128)

void dk_logistic_s8(const dk_logistic_params *params, const int8_t *input,
                    int8_t *output, int32_t size)
{
    const int32_t radius = params->input_range_radius;
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t x = input[i] - params->input_zero_point;
        if (x <= -radius) {
            output[i] = -128;
        } else if (x >= radius) {
            output[i] = 127;
        } else {
            const int32_t x_q4 = dk_mbqm(x, params->input_multiplier,
                                         params->input_left_shift);
            const int32_t y_q0 =
                dk_fx_logistic(x_q4, DK_LOGISTIC_INPUT_INTEGER_BITS);
            const int32_t y = dk_rdbpot(y_q0, DK_LOGISTIC_OUTPUT_SHIFT) +
                              DK_LOGISTIC_OUTPUT_ZERO_POINT;
            output[i] = (int8_t)dk_clamp(y, -128, 127);
        }
    }
}
