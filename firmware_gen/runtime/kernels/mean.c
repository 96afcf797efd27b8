/*
 * mean.c - MEAN (int8) over one contiguous run of axes.
 *
 * The input is viewed as [outer, reduce, inner]; each output is the int32
 * sum over the reduced axis, corrected for the zero point and rescaled by a
 * multiplier that already folds in 1/num_elements (quant.prepare_mean
 * derives it exactly as TFLM adjusts it at run time).
 */
#include "fixedpoint.h"
#include "mean_mve.h"   /* Helium sums (DK_USE_MVE) */

/* One output from its sum */
static inline int8_t dk_mean_out(const dk_mean_params *params, int32_t sum, int32_t zero_point_sum)
{
    const int32_t y = dk_mbqm(dk_wrap_sub(sum, zero_point_sum), params->output.multiplier, params->output.shift) +
                      params->output_zero_point;
    return (int8_t)dk_clamp(y, -128, 127);
}

void dk_mean_s8(const dk_mean_params *params, int32_t outer, int32_t reduce,
                int32_t inner, const int8_t *input, int8_t *output)
{
    const int32_t zero_point_sum =
        params->input_zero_point * params->num_elements;
    int32_t o, i, r;
#if DK_USE_MVE
    for (o = 0; o < outer; ++o) {
        const int8_t *block = input + (int32_t)(o * reduce * inner);
        if (inner == 1) {
            *output++ = dk_mean_out(params, dk_mean_sum_run_mve(block, reduce), zero_point_sum);
            continue;
        }
        for (i = 0; i < inner; i += 8) {
            int32_t sums[8];
            dk_mean_sums_mve(block, reduce, inner, i, sums);
            for (r = 0; r < 8 && i + r < inner; ++r) {
                *output++ = dk_mean_out(params, sums[r], zero_point_sum);
            }
        }
    }
    return;
#endif
    for (o = 0; o < outer; ++o) {
        const int8_t *block = input + (int32_t)(o * reduce * inner);
        for (i = 0; i < inner; ++i) {
            const int8_t *p = block + i;
            int32_t sum = 0;
            for (r = 0; r < reduce; ++r) {
                sum += *p;
                p += inner;
            }
            *output++ = dk_mean_out(params, sum, zero_point_sum);
        }
    }
}
