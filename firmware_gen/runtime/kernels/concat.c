/*
 * concat.c - CONCATENATION (int8; every input and the output share quantization).
 *
 * Seen as [outer, size_i] blocks: output row o is input 0's row o, then input 1's
 * row o, and so on (size_i = the input's extent along the axis times the inner size).
 */
#include <string.h>

#include "dk.h"

void dk_concat_s8(int32_t outer, int32_t count, const int8_t *const *inputs,
                  const int32_t *sizes, int8_t *output)
{
    int32_t o, i;
    for (o = 0; o < outer; ++o) {
        for (i = 0; i < count; ++i) {
            memcpy(output, inputs[i] + o * sizes[i], (size_t)sizes[i]);
            output += sizes[i];
        }
    }
}
