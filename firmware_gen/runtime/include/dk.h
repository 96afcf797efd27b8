/*
 * dk.h - drsn-edge int8 kernel library ("dk" = drsn kernels).
 *
 * Every kernel here reproduces, bit for bit, what the TensorFlow Lite Micro
 * reference kernels compute for the same int8 operator. All quantization
 * arithmetic that TFLM performs in its Prepare step (multipliers, shifts,
 * clamp ranges, radii) is done at generation time by firmware_gen/quant.py;
 * the kernels only compute.
 *
 * Conventions
 *  - Tensors are int8, NHWC, contiguous, batch first.
 *  - A requantization is (multiplier, shift): a Q31 multiplier in
 *    [2^30, 2^31) (or 0) and a power-of-two exponent, positive = left shift.
 *    It scales x by multiplier * 2^(shift - 31), rounding the way TFLM does.
 *  - "offset" fields follow TFLM: input offsets are minus the zero point,
 *    output offsets are the zero point itself.
 *  - No kernel allocates memory; dk_conv1d_s8 takes a scratch buffer whose size
 *    dk_conv1d_scratch_bytes() gives (the generator reserves it in the arena).
 *  - Portable C99; right shifts of negative values are assumed arithmetic
 *    (true for GCC, Clang and Arm compilers).
 */
#ifndef DK_H
#define DK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- parameter structs -------------------------------------------------- */

/* Every dk_*_params / dk_* parameter type (dk_requant, dk_channel_requant,
 * dk_activation, dk_dims, dk_broadcast, ...) is declared in dk_params.h, which
 * is generated from the one description of each struct in firmware_gen/params.py
 * and firmware_gen/ops/ (python -m firmware_gen.params). */
#include "dk_params.h"

/* ---- fixed-point primitives (exported for host tests) ------------------ */

int32_t dk_fx_sat_rounding_doubling_high_mul(int32_t a, int32_t b);
int32_t dk_fx_rounding_divide_by_pot(int32_t x, int32_t exponent);
int32_t dk_fx_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                               int32_t shift);
/* exp(a) for a <= 0, a in Q(integer_bits).(31 - integer_bits); result Q0.31. */
int32_t dk_fx_exp_on_negative_values(int32_t a, int32_t integer_bits);
/* 1 / (1 + a) for a in [0, 1), Q0.31 in and out. */
/* 2 / (1 + a) for a in [0, 1] (Q0.31), as Q2.29: Newton-Raphson, TFLM's rounding. */
int32_t dk_fx_two_over_one_plus_x(int32_t a);
int32_t dk_fx_one_over_one_plus_x(int32_t a);
/* logistic(a), a in Q(integer_bits).(31 - integer_bits); result Q0.31. */
int32_t dk_fx_logistic(int32_t a, int32_t integer_bits);

/* ---- convolutions ------------------------------------------------------- */

/* TRANSPOSE_CONV. filter is [out_c, kh, kw, in_c]; bias may be NULL; params' dilation
 * is unused (1); activation is the int8 range (TFLM fuses none). */
void dk_transpose_conv_s8(const dk_conv_params *params, const dk_channel_requant *quant,
                          const dk_dims *input_dims, const int8_t *input,
                          const dk_dims *filter_dims, const int8_t *filter,
                          const int32_t *bias,
                          const dk_dims *output_dims, int8_t *output);

/* CONV_2D. filter is [out_c, kh, kw, in_c / groups]; bias may be NULL. */
void dk_conv_s8(const dk_conv_params *params, const dk_channel_requant *quant,
                const dk_dims *input_dims, const int8_t *input,
                const dk_dims *filter_dims, const int8_t *filter,
                const int32_t *bias,
                const dk_dims *output_dims, int8_t *output);

/* DEPTHWISE_CONV_2D. filter is [1, kh, kw, out_c], out_c = in_c * depth
 * multiplier; bias may be NULL. */
void dk_depthwise_conv_s8(const dk_conv_params *params,
                          const dk_channel_requant *quant,
                          int32_t depth_multiplier,
                          const dk_dims *input_dims, const int8_t *input,
                          const dk_dims *filter_dims, const int8_t *filter,
                          const int32_t *bias,
                          const dk_dims *output_dims, int8_t *output);

/* DEPTHWISE_CONV_2D with depth multiplier 1, channels in multiples of 4, at most 25 taps, on
 * records packed by firmware_gen/ops/conv.py (pack_depthwise_fast; layout in
 * depthwise_conv.c); scratch: in_c bytes (a row of the input zero point). packed 4-byte
 * aligned. */
void dk_depthwise_conv_s8_fast(const dk_dw_fast_params *p, const int8_t *input, const int16_t *packed,
                               int8_t *scratch, int8_t *output);

/* ---- fully connected ---------------------------------------------------- */

/* FULLY_CONNECTED: output[b][o] = sum_d weights[o][d] * input[b][d] + bias.
 * weights is [out_depth, accum_depth]; bias may be NULL. */
void dk_fully_connected_s8(const dk_fc_params *params,
                           const dk_channel_requant *quant,
                           int32_t batches, int32_t accum_depth,
                           int32_t out_depth,
                           const int8_t *input, const int8_t *weights,
                           const int32_t *bias, int8_t *output);

/* FULLY_CONNECTED of one input row (p: the 1 x 1 Conv1D view of ops/fully_connected.py, in_w 1,
 * taps = depth, a multiple of 4) on dk_conv1d_s8_fast's packed records: the row widened into
 * scratch once, then each channel pair's dot product (SMLAD on DSP cores) and requantization. */
void dk_fully_connected_s8_fast(const dk_conv1d_params *p, const int8_t *input, const int16_t *packed,
                                int16_t *scratch, int8_t *output);

/* ---- elementwise binary operators (with broadcasting) ------------------- */

/* ADD and SUB (one dk_add_params: both inputs rescaled to a common scale). */
void dk_add_s8(const dk_add_params *params, const dk_broadcast *bc,
               const int8_t *input1, const int8_t *input2, int8_t *output);
void dk_sub_s8(const dk_add_params *params, const dk_broadcast *bc,
               const int8_t *input1, const int8_t *input2, int8_t *output);

void dk_mul_s8(const dk_mul_params *params, const dk_broadcast *bc,
               const int8_t *input1, const int8_t *input2, int8_t *output);

/* MINIMUM / MAXIMUM compare raw int8 values, exactly like TFLM, which
 * requires inputs and output to share one scale and zero point. */
void dk_minimum_s8(const dk_broadcast *bc, const int8_t *input1,
                   const int8_t *input2, int8_t *output);
void dk_maximum_s8(const dk_broadcast *bc, const int8_t *input1,
                   const int8_t *input2, int8_t *output);

/* ---- elementwise unary operators ---------------------------------------- */

void dk_abs_s8(const dk_abs_params *params, const int8_t *input,
               int8_t *output, int32_t size);

/* RELU / RELU6 / RELU_N1_TO_1 as standalone operators (rescale then clamp). */
void dk_relu_s8(const dk_relu_params *params, const int8_t *input,
                int8_t *output, int32_t size);

/* QUANTIZE with int8 input and int8 output. */
void dk_requantize_s8(const dk_requantize_params *params, const int8_t *input,
                      int8_t *output, int32_t size);

/* QUANTIZE uint8 -> int8 (the model's uint8 input) and int8 -> uint8 (its uint8 output):
 * the uint8 side as plain bytes read or written as uint8, zero points in its own range. */
void dk_requantize_u8_s8(const dk_requantize_params *params, const int8_t *input,
                         int8_t *output, int32_t size);
void dk_requantize_s8_u8(const dk_requantize_params *params, const int8_t *input,
                         int8_t *output, int32_t size);

/* QUANTIZE float32 -> int8 (the model's float input): input bytes, 4 per value, native
 * float32 (no alignment required), each clamp(round_half_away(x / scale) + zero_point) with
 * TFLM's float32 division; out-of-int32-range quotients and NaN as the TFLM host gives them. */
void dk_quantize_f32_s8(const dk_quantize_params *params, const int8_t *input,
                        int8_t *output, int32_t size);

/* DEQUANTIZE int8 -> float32 (the model's float output): output bytes, 4 per value,
 * native float32 (no alignment required), each (float)((double)scale * (q - zero_point)). */
void dk_dequantize_s8_f32(const dk_dequantize_params *params, const int8_t *input,
                          int8_t *output, int32_t size);

/* LOGISTIC; output scale 1/256, zero point -128 (fixed by TFLM). */
void dk_logistic_s8(const dk_logistic_params *params, const int8_t *input,
                    int8_t *output, int32_t size);

/* TANH; output scale 1/128, zero point 0 (fixed by TFLM); parameters as LOGISTIC's. */
void dk_tanh_s8(const dk_logistic_params *params, const int8_t *input,
                int8_t *output, int32_t size);

/* Table lookup: output[i] = table[(uint8_t)input[i]]. Any int8 -> int8
 * unary operator can be tabulated at generation time (see hostlib). */
void dk_lut_s8(const int8_t table[256], const int8_t *input, int8_t *output,
               int32_t size);

/* Copy (RESHAPE, EXPAND_DIMS, SQUEEZE when not aliased). input may equal
 * output. */
void dk_copy_s8(const int8_t *input, int8_t *output, int32_t size);

/* ---- reductions and pooling -------------------------------------------- */

/* MEAN over the middle axis of an [outer, reduce, inner] view of the input
 * (reduce == num_elements); output is [outer, inner]. */
void dk_mean_s8(const dk_mean_params *params, int32_t outer, int32_t reduce,
                int32_t inner, const int8_t *input, int8_t *output);

/* AVERAGE_POOL_2D and MAX_POOL_2D (input and output share quantization).
 * dk_avgpool_s8 returns 0 on success, -1 if a window holds no input. */
int32_t dk_avgpool_s8(const dk_pool_params *params,
                      const dk_dims *input_dims, const int8_t *input,
                      const dk_dims *output_dims, int8_t *output);
void dk_maxpool_s8(const dk_pool_params *params,
                   const dk_dims *input_dims, const int8_t *input,
                   const dk_dims *output_dims, int8_t *output);

/* PRELU: alpha broadcast against the input (plan as for the binary ops). */
void dk_prelu_s8(const dk_prelu_params *params, const dk_broadcast *bc,
                 const int8_t *input, const int8_t *alpha, int8_t *output);

/* ---- resizing ----------------------------------------------------------- */

/* RESIZE_BILINEAR (TFLM's integer kernel): per output row/column two input rows/columns
 * and a weight in 1/1024 (tables from the generator); sum / 2^20 rounded half away. */
void dk_resize_bilinear_s8(const dk_resize_bilinear_params *params, const int8_t *input,
                           int8_t *output);

/* RESIZE_NEAREST_NEIGHBOR: each output pixel copies input pixel (rows[y], cols[x]). */
void dk_resize_nearest_s8(const dk_resize_nearest_params *params, const int8_t *input,
                          int8_t *output);

/* REDUCE_MAX over contiguous axes: [outer, reduce, inner] -> [outer, inner], the int8
 * maximum (input and output share their quantization). The output must not overlap the
 * input. */
void dk_reduce_max_s8(int32_t outer, int32_t reduce, int32_t inner, const int8_t *input,
                      int8_t *output);

/* STRIDED_SLICE (constant begin/end/strides): output element (i0, i1, i2, i3) is input
 * element start + i0 * step[0] + i1 * step[1] + i2 * step[2] + i3 * step[3]. */
void dk_strided_slice_s8(const dk_strided_slice_params *params, const int8_t *input,
                         int8_t *output);

/* BATCH_MATMUL: per batch (three axes, steps 0 where broadcast) lhs [rows, depth] x
 * rhs [depth, cols] -> [rows, cols], operands read through element steps (adj_x / adj_y). */
void dk_batch_matmul_s8(const dk_batch_matmul_params *params, const int8_t *lhs,
                        const int8_t *rhs, int8_t *output);

/* SQUARED_DIFFERENCE: (a - b)^2 with TFLM's int8 rescaling, broadcasting. */
void dk_squared_difference_s8(const dk_squared_difference_params *params, const dk_broadcast *bc,
                              const int8_t *input1, const int8_t *input2, int8_t *output);

/* L2_NORMALIZATION over the last axis: [outer, depth], output in units of 1/128. */
void dk_l2_normalization_s8(int32_t zero_point, int32_t outer, int32_t depth,
                            const int8_t *input, int8_t *output);

/* ---- padding and concatenation ---------------------------------------- */

/* GATHER (constant indices) and MIRROR_PAD: output (i0, i1, i2, i3) is input[o0[i0] +
 * o1[i1] + o2[i2] + o3[i3]], the offsets of each axis in turn in params->offsets. */
void dk_index_map_s8(const dk_index_map_params *params, const int8_t *input, int8_t *output);

/* SPACE_TO_BATCH_ND: the input's pixels dealt out to block[0] * block[1] batches, with
 * padding (params->pad_value) around them. */
void dk_space_to_batch_s8(const dk_space_to_batch_params *params, const int8_t *input, int8_t *output);

/* PAD / PADV2: input and output share quantization. */
void dk_pad_s8(const dk_pad_params *params, const int8_t *input, int8_t *output);

/* TRANSPOSE: a permutation of up to four dimensions. */
void dk_transpose_s8(const dk_transpose_params *params, const int8_t *input, int8_t *output);

/* CONCATENATION of `count` inputs as [outer, sizes[i]] blocks (same quantization). */
void dk_concat_s8(int32_t outer, int32_t count, const int8_t *const *inputs,
                  const int32_t *sizes, int8_t *output);

/* ---- softmax ----------------------------------------------------------- */

/* SOFTMAX over the last axis ([outer, depth]); output scale 1/256,
 * zero point -128 (fixed by TFLM). */
void dk_softmax_s8(const dk_softmax_params *params, int32_t outer,
                   int32_t depth, const int8_t *input, int8_t *output);

/* LOG_SOFTMAX over the last axis; output scale 16/256, zero point 127 (fixed by TFLM). */
void dk_log_softmax_s8(const dk_log_softmax_params *params, int32_t outer, int32_t depth,
                       const int8_t *input, int8_t *output);

/* ---- fused kernels (generation-time patterns of the DRSN graph) --------- */

/* Soft threshold + residual (dk_shrink_params). r, shortcut, out: [positions, channels]; tau: [channels]. stage: 0 a, 1 m, 2 s, 3 y,
 * 4 z (values above the last available stage store the last one). */
void dk_shrink_s8(const dk_shrink_params *params, int32_t positions, int32_t channels,
                  const int8_t *r, const int8_t *tau, const int8_t *shortcut,
                  int8_t *out, int32_t stage);

/* Per-channel MUL then ADD of constants (a batch normalisation): u = x * scale[c],
 * y = u + shift[c] with the ADD's fused activation. stage 0 stores u, 1 stores y. */
void dk_channel_affine_s8(const dk_channel_affine_params *params, int32_t positions,
                          int32_t channels, const int8_t *x, const int8_t *scale,
                          const int8_t *shift, int8_t *out, int32_t stage);

/* ABS (as a table of its 256 results) then MEAN over positions, per channel.
 * abs_out may be NULL; out is [channels]. */
void dk_abs_mean_s8(const int8_t abs_table[256], const dk_mean_params *mean,
                    int32_t positions, int32_t channels, const int8_t *x,
                    int8_t *abs_out, int8_t *out);

/* ADD (subtract = 0) or SUB (1) of two same-shape int8 tensors of `size` elements: the
 * results of dk_add_s8 / dk_sub_s8 with a shorter exact rescaling. */
void dk_add_same_s8(const dk_add_params *params, int32_t size, const int8_t *input1,
                    const int8_t *input2, int8_t *output, int32_t subtract);

/* ---- 1-D convolution with generation-time packed weights ---------------- */

/* CONV_2D with a 1 x K filter, dilation 1, no groups (what Conv1D becomes), over
 * [1, 1, in_w, in_c]. Weights are packed by firmware_gen/ops/conv1d.py (pack_conv1d):
 * output channels in pairs, each pair's K * in_c taps (padded to a multiple of 4 with
 * zeros) interleaved four at a time: w[o][0..3], w[o+1][0..3], w[o][4..7], ...; an odd last
 * channel is paired with zeros. scratch holds (the DSP variant) the int16 image of the
 * input with the input offset added and the padding as zeros: dk_conv1d_scratch_bytes()
 * (dk_conv1d_s8_fast: the raw input and the zero point, the same size). */
int32_t dk_conv1d_scratch_bytes(const dk_conv1d_params *params);
void dk_conv1d_s8(const dk_conv1d_params *params, const dk_channel_requant *quant,
                  const int8_t *input, const int8_t *packed_filter, const int32_t *bias,
                  int16_t *scratch, int8_t *output);

/* The fast variant for layers ops/conv1d.py's conv1d_fast accepts: bias, weights and requantization
 * of each channel pair in one record (pack_conv1d_fast; layout in conv1d.h).
 * packed and scratch must be 4-byte aligned (the generator aligns both to 16). */
void dk_conv1d_s8_fast(const dk_conv1d_params *params, const int8_t *input, const int16_t *packed,
                       int16_t *scratch, int8_t *output);

/* CONV_2D (no groups, batch 1) through im2col: p->block output pixels at a time become rows of
 * p->patch taps in cols (int8, the zero point where a tap is padding), then dk_conv1d_s8_fast
 * with rows (a 1 x 1 Conv1D over p->block columns of p->patch channels; packed as for it)
 * computes their outputs; scratch is its widened image. cols, packed and scratch 4-byte
 * aligned. Chosen by firmware_gen/ops/conv.py (fast_geometry), sizes from fast_plan. */
void dk_conv_s8_fast(const dk_conv_fast_params *p, const dk_conv1d_params *rows, const int8_t *input,
                     const int16_t *packed, int8_t *cols, int16_t *scratch, int8_t *output);

/* ---- raw sensor input ----------------------------------------------------- */

#define DK_PRE_OK 0
#define DK_PRE_BAD_LENGTH (-1)  /* n is 0 or above 65536 */
#define DK_PRE_BAD_SCALE (-2)   /* scale is not a positive normal float */
#define DK_PRE_BAD_ZERO_POINT (-3)

/* int16 samples of one window -> the model's int8 input: mean removal, RMS normalisation
 * and quantization at (scale, zero_point), in integers only. Bit-exact twin of
 * drsn_edge/preprocess.py `preprocess`, whose docstring (and docs/preprocessing.md)
 * defines every step. Also linked into the serial harness (the RAW command) of every
 * back end. info may be NULL. Returns DK_PRE_OK or a DK_PRE_* error (out untouched). */
int32_t dk_preprocess_s16(const int16_t *samples, uint32_t n, float scale, int32_t zero_point,
                          int8_t *out, dk_preprocess_info *info);

#ifdef __cplusplus
}
#endif

#endif /* DK_H */
