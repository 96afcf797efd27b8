/*
 * batch_matmul.c - BATCH_MATMUL (int8 x int8 -> int8, per-tensor quantization).
 *
 * For each of up to three broadcast batch axes, output [rows, cols] = lhs [rows, depth] x
 * rhs [depth, cols]; each operand is read through element steps, so a transposed operand
 * (adj_x / adj_y) or a broadcast batch (step 0) costs no copy. Every output is the int32 sum
 * of (lhs + lhs_offset) * (rhs + rhs_offset), requantized once, plus the output zero point,
 * clamped to int8.
 */
#include "fixedpoint.h"

void dk_batch_matmul_s8(const dk_batch_matmul_params *params, const int8_t *lhs,
                        const int8_t *rhs, int8_t *output)
{
    int32_t b0, b1, b2, i, j, k;
    for (b0 = 0; b0 < params->batch[0]; ++b0) {
        for (b1 = 0; b1 < params->batch[1]; ++b1) {
            for (b2 = 0; b2 < params->batch[2]; ++b2) {
                const int8_t *a = lhs + b0 * params->lhs_batch_step[0] + b1 * params->lhs_batch_step[1]
                                  + b2 * params->lhs_batch_step[2];
                const int8_t *b = rhs + b0 * params->rhs_batch_step[0] + b1 * params->rhs_batch_step[1]
                                  + b2 * params->rhs_batch_step[2];
                for (i = 0; i < params->rows; ++i) {
                    for (j = 0; j < params->cols; ++j) {
                        const int8_t *pa = a + i * params->lhs_row_step;
                        const int8_t *pb = b + j * params->rhs_col_step;
                        int32_t acc = 0;
                        for (k = 0; k < params->depth; ++k) {
                            acc += (pa[k * params->lhs_depth_step] + params->lhs_offset)
                                   * (pb[k * params->rhs_depth_step] + params->rhs_offset);
                        }
                        acc = dk_mbqm(acc, params->output.multiplier, params->output.shift)
                              + params->output_zero_point;
                        *output++ = (int8_t)dk_clamp(acc, -128, 127);
                    }
                }
            }
        }
    }
}
