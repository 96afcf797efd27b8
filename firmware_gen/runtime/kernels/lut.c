/*
 * lut.c - int8 -> int8 table lookup. The table is indexed by the input's
 * bit pattern, so entry k holds the output for the input (int8_t)k.
 */
#include "dk.h"

void dk_lut_s8(const int8_t table[256], const int8_t *input, int8_t *output,
               int32_t size)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        output[i] = table[(uint8_t)input[i]];
    }
}
