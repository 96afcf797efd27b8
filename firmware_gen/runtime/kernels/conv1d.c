/*
 * conv1d.c - CONV_2D with a 1 x K filter (a Keras Conv1D), im2col-free, on weights the
 * generator packed for the inner loop (layout in dk.h, dk_conv1d_params).
 *
 * For an output column the K taps of every input channel are one contiguous run of the
 * input ((x * stride - pad) * in_c onwards), so each output is a dot product of two
 * contiguous vectors. The input is widened once per block of output columns into an int16
 * scratch image with the input offset added and the padding columns as zeros, so the inner
 * loop needs no bounds checks and no offset arithmetic.
 *
 * DSP variant (DK_USE_DSP): 2 output columns x 2 output channels per pass; per 4 taps one
 * 8-byte load of packed weights (4 taps of each channel, stored w0 w2 w1 w3 so that SXTB16
 * and SXTB16 ROR 8 give the pairs (w0,w1), (w2,w3) in the order of the int16 image), two
 * 8-byte loads of input and eight SMLAD dual multiply-accumulates. Portable variant: the
 * same blocks with plain multiply-adds. Both requantize exactly as TFLM (dk_mbqm).
 */
#include "conv1d.h"

int32_t dk_conv1d_scratch_bytes(const dk_conv1d_params *p)
{
    return dk_conv1d_scratch_bytes_inline(p);
}

void dk_conv1d_s8(const dk_conv1d_params *p, const dk_channel_requant *quant,
                  const int8_t *input, const int8_t *packed_filter, const int32_t *bias,
                  int16_t *scratch, int8_t *output)
{
    dk_conv1d_s8_inline(p, quant, input, packed_filter, bias, scratch, output);
}

/* The fast wide variant (conv1d.h, dk_conv1d_s8_fast_inline), for the host tests. */
void dk_conv1d_s8_fast(const dk_conv1d_params *p, const int8_t *input, const int16_t *packed,
                       int16_t *scratch, int8_t *output);
void dk_conv1d_s8_fast(const dk_conv1d_params *p, const int8_t *input, const int16_t *packed,
                       int16_t *scratch, int8_t *output)
{
    dk_conv1d_s8_fast_inline(p, input, packed, scratch, output);
}
