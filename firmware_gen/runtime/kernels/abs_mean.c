/*
 * abs_mean.c - ABS then MEAN over positions (the shrinkage unit's A = mean|r|), in one
 * pass: |r| is rounded to int8 exactly as TFLM's ABS does (through a 256-entry table the
 * generator fills with the ABS kernel's own results), summed per channel, and the sum is
 * requantized exactly as TFLM's MEAN does. abs_out, when not NULL, also receives the ABS
 * tensor (the model's debug dump).
 */
#include "abs_mean_mve.h"   /* Helium sums (DK_USE_MVE) */
#include "fixedpoint.h"

/* MEAN's requantization of one channel's sum */
static inline int8_t dk_abs_mean_out(const dk_mean_params *mean, int32_t sum, int32_t zero_point_sum)
{
    const int32_t y = dk_mbqm(dk_wrap_sub(sum, zero_point_sum), mean->output.multiplier, mean->output.shift) +
                      mean->output_zero_point;
    return (int8_t)dk_clamp(y, -128, 127);
}

void dk_abs_mean_s8(const int8_t abs_table[256], const dk_mean_params *mean,
                    int32_t positions, int32_t channels, const int8_t *x,
                    int8_t *abs_out, int8_t *out)
{
    const int32_t zero_point_sum = mean->input_zero_point * mean->num_elements;
    int32_t c, i;
#if DK_USE_MVE
    for (c = 0; c < channels; c += 8) {
        int32_t sums[8];
        dk_abs_sums_mve(abs_table, positions, channels, x, abs_out, c, sums);
        for (i = 0; i < 8 && c + i < channels; ++i) {
            out[c + i] = dk_abs_mean_out(mean, sums[i], zero_point_sum);
        }
    }
    return;
#endif
    for (c = 0; c < channels; ++c) {
        const int8_t *xp = x + c;
        int32_t sum = 0;
        if (abs_out) {
            for (i = 0; i < positions; ++i) {
                const int8_t v = abs_table[(uint8_t)xp[i * channels]];
                abs_out[i * channels + c] = v;
                sum += v;
            }
        } else {
            /* four positions a pass into two sums: a quarter of the loop steps, and the
             * loads do not wait on one add chain */
            const int32_t c2 = 2 * channels, c3 = 3 * channels;
            int32_t sum2 = 0;
            for (i = 0; i + 3 < positions; i += 4) {
                sum += abs_table[(uint8_t)xp[0]] + abs_table[(uint8_t)xp[channels]];
                sum2 += abs_table[(uint8_t)xp[c2]] + abs_table[(uint8_t)xp[c3]];
                xp += 4 * channels;
            }
            for (; i < positions; ++i) {
                sum += abs_table[(uint8_t)*xp];
                xp += channels;
            }
            sum += sum2;
        }
        out[c] = dk_abs_mean_out(mean, sum, zero_point_sum);
    }
}
