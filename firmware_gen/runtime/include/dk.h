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

/* ---- shared parameter types -------------------------------------------- */

/* One requantization step: scale by multiplier * 2^(shift - 31). */
typedef struct {
    int32_t multiplier;
    int32_t shift;
} dk_requant;

/* Per-output-channel requantization (CONV, DEPTHWISE, FULLY_CONNECTED).
 * For per-tensor quantization pass one-element arrays and per_channel = 0. */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t per_channel;
} dk_channel_requant;

/* Clamp range of the quantized output (fused activation and int8 limits). */
typedef struct {
    int32_t min;
    int32_t max;
} dk_activation;

/* NHWC dimensions. For filters: n = output channels, c = input channels
 * per group (CONV) or 1 (DEPTHWISE, whose filter is [1, kh, kw, out_c]). */
typedef struct {
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} dk_dims;

/* Four-dimensional iteration plan for broadcasting binary operators.
 * out_dims is the output shape (padded/compressed to 4-D by
 * quant.broadcast_plan); in1_strides / in2_strides are element strides
 * for each output dimension, 0 where that input is broadcast. A same-shape
 * operation is out_dims {1, 1, 1, N} with strides {0, 0, 0, 1}. */
typedef struct {
    int32_t out_dims[4];
    int32_t in1_strides[4];
    int32_t in2_strides[4];
} dk_broadcast;

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

typedef struct {
    int32_t input_offset;   /* -input zero point */
    int32_t output_offset;  /* output zero point */
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_h;          /* padding before the first row */
    int32_t pad_w;          /* padding before the first column */
    int32_t dilation_h;
    int32_t dilation_w;
    dk_activation activation;
} dk_conv_params;

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

/* ---- fully connected ---------------------------------------------------- */

typedef struct {
    int32_t input_offset;   /* -input zero point */
    int32_t filter_offset;  /* -filter zero point (0 for int8 weights) */
    int32_t output_offset;  /* output zero point */
    dk_activation activation;
} dk_fc_params;

/* FULLY_CONNECTED: output[b][o] = sum_d weights[o][d] * input[b][d] + bias.
 * weights is [out_depth, accum_depth]; bias may be NULL. */
void dk_fully_connected_s8(const dk_fc_params *params,
                           const dk_channel_requant *quant,
                           int32_t batches, int32_t accum_depth,
                           int32_t out_depth,
                           const int8_t *input, const int8_t *weights,
                           const int32_t *bias, int8_t *output);

/* ---- elementwise binary operators (with broadcasting) ------------------- */

/* ADD and SUB share one parameter set (TFLM's general int8 path: both inputs
 * are rescaled to a common scale after a left shift of 20 bits). */
typedef struct {
    int32_t input1_offset;  /* -zero point */
    int32_t input2_offset;  /* -zero point */
    int32_t output_offset;  /* zero point */
    int32_t left_shift;     /* 20 for int8 */
    dk_requant input1;
    dk_requant input2;
    dk_requant output;
    dk_activation activation;
} dk_add_params;

void dk_add_s8(const dk_add_params *params, const dk_broadcast *bc,
               const int8_t *input1, const int8_t *input2, int8_t *output);
void dk_sub_s8(const dk_add_params *params, const dk_broadcast *bc,
               const int8_t *input1, const int8_t *input2, int8_t *output);

typedef struct {
    int32_t input1_offset;  /* -zero point */
    int32_t input2_offset;  /* -zero point */
    int32_t output_offset;  /* zero point */
    dk_requant output;
    dk_activation activation;
} dk_mul_params;

void dk_mul_s8(const dk_mul_params *params, const dk_broadcast *bc,
               const int8_t *input1, const int8_t *input2, int8_t *output);

/* MINIMUM / MAXIMUM compare raw int8 values, exactly like TFLM, which
 * requires inputs and output to share one scale and zero point. */
void dk_minimum_s8(const dk_broadcast *bc, const int8_t *input1,
                   const int8_t *input2, int8_t *output);
void dk_maximum_s8(const dk_broadcast *bc, const int8_t *input1,
                   const int8_t *input2, int8_t *output);

/* ---- elementwise unary operators ---------------------------------------- */

typedef struct {
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t needs_rescale;  /* 0 when input and output scales are equal */
    dk_requant output;
} dk_abs_params;

void dk_abs_s8(const dk_abs_params *params, const int8_t *input,
               int8_t *output, int32_t size);

typedef struct {
    int32_t input_zero_point;
    int32_t output_zero_point;
    dk_requant output;
    dk_activation activation;
} dk_relu_params;

/* RELU / RELU6 / RELU_N1_TO_1 as standalone operators (rescale then clamp). */
void dk_relu_s8(const dk_relu_params *params, const int8_t *input,
                int8_t *output, int32_t size);

typedef struct {
    int32_t input_zero_point;
    int32_t output_zero_point;
    dk_requant output;
} dk_requantize_params;

/* QUANTIZE with int8 input and int8 output. */
void dk_requantize_s8(const dk_requantize_params *params, const int8_t *input,
                      int8_t *output, int32_t size);

typedef struct {
    int32_t input_zero_point;
    int32_t input_range_radius;
    int32_t input_multiplier;
    int32_t input_left_shift;
} dk_logistic_params;

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

typedef struct {
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t num_elements;   /* elements averaged into each output */
    dk_requant output;      /* already includes the 1/num_elements factor */
} dk_mean_params;

/* MEAN over the middle axis of an [outer, reduce, inner] view of the input
 * (reduce == num_elements); output is [outer, inner]. */
void dk_mean_s8(const dk_mean_params *params, int32_t outer, int32_t reduce,
                int32_t inner, const int8_t *input, int8_t *output);

typedef struct {
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_h;
    int32_t pad_w;
    int32_t filter_h;
    int32_t filter_w;
    dk_activation activation;
} dk_pool_params;

/* AVERAGE_POOL_2D and MAX_POOL_2D (input and output share quantization).
 * dk_avgpool_s8 returns 0 on success, -1 if a window holds no input. */
int32_t dk_avgpool_s8(const dk_pool_params *params,
                      const dk_dims *input_dims, const int8_t *input,
                      const dk_dims *output_dims, int8_t *output);
void dk_maxpool_s8(const dk_pool_params *params,
                   const dk_dims *input_dims, const int8_t *input,
                   const dk_dims *output_dims, int8_t *output);

typedef struct {
    int32_t input_offset;   /* -input zero point */
    int32_t alpha_offset;   /* -alpha zero point */
    int32_t output_offset;  /* output zero point */
    dk_requant positive;    /* input_scale / output_scale */
    dk_requant negative;    /* input_scale * alpha_scale / output_scale */
} dk_prelu_params;

/* PRELU: alpha broadcast against the input (plan as for the binary ops). */
void dk_prelu_s8(const dk_prelu_params *params, const dk_broadcast *bc,
                 const int8_t *input, const int8_t *alpha, int8_t *output);

/* ---- padding and concatenation ---------------------------------------- */

typedef struct {
    int32_t input_dims[4];  /* the input as four dimensions (leading 1s added) */
    int32_t before[4];      /* elements of padding before, per dimension */
    int32_t after[4];       /* and after */
    int32_t value;          /* the padding value (output zero point or PADV2's) */
} dk_pad_params;

/* PAD / PADV2: input and output share quantization. */
void dk_pad_s8(const dk_pad_params *params, const int8_t *input, int8_t *output);

typedef struct {
    int32_t input_dims[4];  /* the input as four dimensions (leading 1s added) */
    int32_t perm[4];        /* output dimension d is input dimension perm[d] */
} dk_transpose_params;

/* TRANSPOSE: a permutation of up to four dimensions. */
void dk_transpose_s8(const dk_transpose_params *params, const int8_t *input, int8_t *output);

/* CONCATENATION of `count` inputs as [outer, sizes[i]] blocks (same quantization). */
void dk_concat_s8(int32_t outer, int32_t count, const int8_t *const *inputs,
                  const int32_t *sizes, int8_t *output);

/* ---- softmax ----------------------------------------------------------- */

typedef struct {
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} dk_softmax_params;

/* SOFTMAX over the last axis ([outer, depth]); output scale 1/256,
 * zero point -128 (fixed by TFLM). */
void dk_softmax_s8(const dk_softmax_params *params, int32_t outer,
                   int32_t depth, const int8_t *input, int8_t *output);

/* ---- fused kernels (generation-time patterns of the DRSN graph) --------- */

/* Soft threshold + residual: ADD(r, tau) -> MINIMUM(., min_value) ; SUB(r, tau) ReLU ;
 * ADD(sub, min) ; ADD(that, shortcut). Each dk_add_params as for dk_add_s8 with
 * input1 = the first operand of that operator in the model. */
typedef struct {
    dk_add_params add;      /* a = r + tau */
    dk_add_params sub;      /* s = r - tau, ReLU */
    dk_add_params sum;      /* y = s + m */
    dk_add_params res;      /* z = y + shortcut (unused without a shortcut) */
    int32_t min_value;      /* m = min(a, min_value), raw int8 */
    int32_t sum_s_first;    /* 1: sum's input1 is s; 0: it is m */
    int32_t res_y_first;    /* 1: res's input1 is y; 0: it is the shortcut */
} dk_shrink_params;

/* r, shortcut, out: [positions, channels]; tau: [channels]. stage: 0 a, 1 m, 2 s, 3 y,
 * 4 z (values above the last available stage store the last one). */
void dk_shrink_s8(const dk_shrink_params *params, int32_t positions, int32_t channels,
                  const int8_t *r, const int8_t *tau, const int8_t *shortcut,
                  int8_t *out, int32_t stage);

/* Per-channel MUL then ADD of constants (a batch normalisation): u = x * scale[c],
 * y = u + shift[c] with the ADD's fused activation. stage 0 stores u, 1 stores y. */
typedef struct {
    dk_mul_params mul;
    dk_add_params add;
    int32_t mul_x_first;    /* 1: the MUL's input1 is x; 0: it is the scale constant */
    int32_t add_u_first;    /* 1: the ADD's input1 is u; 0: it is the shift constant */
} dk_channel_affine_params;

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
 * [1, 1, in_w, in_c]. Weights are packed by firmware_gen/codegen.py (pack_conv1d):
 * output channels in pairs, each pair's K * in_c taps (padded to a multiple of 4 with
 * zeros) interleaved four at a time: w[o][0..3], w[o+1][0..3], w[o][4..7], ...; an odd last
 * channel is paired with zeros. scratch holds (the DSP variant) the int16 image of the
 * input with the input offset added and the padding as zeros: dk_conv1d_scratch_bytes()
 * (dk_conv1d_s8_fast: the raw input and the zero point, the same size). */
typedef struct {
    int32_t input_offset;
    int32_t output_offset;
    int32_t in_w;
    int32_t in_c;
    int32_t out_w;
    int32_t out_c;
    int32_t kernel;
    int32_t stride;
    int32_t pad;            /* zero taps before the first input column */
    int32_t taps;           /* kernel * in_c, padded up to a multiple of 4 */
    dk_activation activation;
    int32_t small_acc;      /* 1: every |accumulator << left shift| < 2^30 (checked by the
                               generator from the weights and bias), so the short exact
                               requantization applies */
    int32_t block;          /* output columns per widened block (even, >= 2): the scratch
                               holds (block - 1) * stride + kernel columns, and the overlap
                               between blocks, kernel - stride columns, is widened twice */
} dk_conv1d_params;

int32_t dk_conv1d_scratch_bytes(const dk_conv1d_params *params);
void dk_conv1d_s8(const dk_conv1d_params *params, const dk_channel_requant *quant,
                  const int8_t *input, const int8_t *packed_filter, const int32_t *bias,
                  int16_t *scratch, int8_t *output);

/* The fast variant for layers codegen.conv1d_fast accepts: bias, weights and requantization
 * of each channel pair in one record (codegen.pack_conv1d_fast; layout in conv1d.h).
 * packed and scratch must be 4-byte aligned (the generator aligns both to 16). */
void dk_conv1d_s8_fast(const dk_conv1d_params *params, const int8_t *input, const int16_t *packed,
                       int16_t *scratch, int8_t *output);

/* ---- raw sensor input ----------------------------------------------------- */

/* Per-window integers of the preprocessing (for reports and tests). */
typedef struct {
    int32_t mean;        /* rounded mean of the window */
    int64_t energy;      /* sum of (x - mean)^2; 0 = silent window */
    int32_t multiplier;  /* M: c * M * 2^-shift ~= c / (RMS * scale) */
    int32_t shift;
} dk_preprocess_info;

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
