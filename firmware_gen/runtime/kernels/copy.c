/*
 * copy.c - RESHAPE / EXPAND_DIMS / SQUEEZE: the data is unchanged, only its
 * shape. The generator normally aliases the buffers; this copies when it
 * cannot.
 */
#include <string.h>

#include "dk.h"

void dk_copy_s8(const int8_t *input, int8_t *output, int32_t size)
{
    if (input != output && size > 0) {
        memmove(output, input, (size_t)size);
    }
}
