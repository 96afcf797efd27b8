/*
 * reduce_max.c - REDUCE_MAX over contiguous axes: input [outer, reduce, inner] ->
 * output [outer, inner], each output the largest of its `reduce` inputs. Input and output
 * share their quantization, so the int8 maximum is the answer (as TFLM computes it).
 */
#include "dk.h"

void dk_reduce_max_s8(int32_t outer, int32_t reduce, int32_t inner, const int8_t *input,
                      int8_t *output)
{
    int32_t o, r, i;
    for (o = 0; o < outer; ++o) {
        const int8_t *base = input + o * reduce * inner;
        int8_t *out = output + o * inner;
        for (i = 0; i < inner; ++i) {
            out[i] = base[i];
        }
        for (r = 1; r < reduce; ++r) {
            const int8_t *row = base + r * inner;
            for (i = 0; i < inner; ++i) {
                if (row[i] > out[i]) {
                    out[i] = row[i];
                }
            }
        }
    }
}
