/*
 * requantize.c - QUANTIZE between 8-bit integer types: int8 -> int8 (a change of scale
 * and/or zero point), and uint8 <-> int8 at the model's interface (a model converted with
 * inference_input_type / inference_output_type = tf.uint8).
 *
 * All three are TFLM's integer requantization: (q - input zero point) times the fixed-point
 * multiplier, plus the output zero point, clamped to the output type's range. The uint8
 * kernels take and give plain bytes (the arena and the model API hold int8_t) and read or
 * write them as uint8. With equal scales (multiplier 2^30, shift 1, an exact identity) and
 * zero points 128 apart, the result is the byte with its top bit flipped, which is what
 * TFLM's shortcut for that case computes too; the kernels take that shortcut as well (the
 * converter's case: a few instructions per value instead of a fixed-point multiply).
 */
#include "fixedpoint.h"

/* Equal scales (an exact identity multiplier) and zero points 128 apart in the direction
 * of the conversion: value - zp_in + zp_out is the byte with its top bit flipped, never clamped. */
static int flips(const dk_requantize_params *params, int32_t zero_point_diff)
{
    return params->output.multiplier == (1 << 30) && params->output.shift == 1 &&
           params->input_zero_point - params->output_zero_point == zero_point_diff;
}

static void flip_top_bits(const int8_t *input, int8_t *output, int32_t size)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        output[i] = (int8_t)((uint8_t)input[i] ^ 0x80u);
    }
}

static int32_t requantize_one(const dk_requantize_params *params, int32_t q)
{
    return dk_mbqm(q - params->input_zero_point, params->output.multiplier, params->output.shift) +
           params->output_zero_point;
}

void dk_requantize_s8(const dk_requantize_params *params, const int8_t *input,
                      int8_t *output, int32_t size)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        output[i] = (int8_t)dk_clamp(requantize_one(params, input[i]), -128, 127);
    }
}

void dk_requantize_u8_s8(const dk_requantize_params *params, const int8_t *input,
                         int8_t *output, int32_t size)
{
    int32_t i;
    if (flips(params, 128)) {
        flip_top_bits(input, output, size);
        return;
    }
    for (i = 0; i < size; ++i) {
        output[i] = (int8_t)dk_clamp(requantize_one(params, (uint8_t)input[i]), -128, 127);
    }
}

void dk_requantize_s8_u8(const dk_requantize_params *params, const int8_t *input,
                         int8_t *output, int32_t size)
{
    int32_t i;
    if (flips(params, -128)) {
        flip_top_bits(input, output, size);
        return;
    }
    for (i = 0; i < size; ++i) {
        /* the uint8 value v stored as the byte v (the int8 bit pattern of v - 256 above 127) */
        output[i] = (int8_t)(uint8_t)dk_clamp(requantize_one(params, input[i]), 0, 255);
    }
}
