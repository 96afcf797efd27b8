/*
 * dk_params.h - the parameter structs of the dk kernels.
 *
 * GENERATED from the descriptions in firmware_gen/params.py and the op units
 * of firmware_gen/ops;
 * do not edit: run `python -m firmware_gen.params` (tests/test_params.py checks it).
 * Included by dk.h.
 */
#ifndef DK_PARAMS_H
#define DK_PARAMS_H

#include <stdint.h>

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

/* Per-window integers of the raw-input preprocessing (for reports and tests). */
typedef struct {
    int32_t mean;        /* rounded mean of the window */
    int64_t energy;      /* sum of (x - mean)^2; 0 = silent window */
    int32_t multiplier;  /* M: c * M * 2^-shift ~= c / (RMS * scale) */
    int32_t shift;
} dk_preprocess_info;

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

/* CONV_2D through im2col and dk_conv1d_s8_fast (dk_conv_s8_fast): the im2col of block
 * pixels, then a 1 x 1 Conv1D over those rows. */
typedef struct {
    int32_t in_h;
    int32_t in_w;
    int32_t in_c;
    int32_t out_w;
    int32_t pixels;      /* output pixels (out_h * out_w) */
    int32_t k_h;
    int32_t k_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_h;       /* padding before the first row */
    int32_t pad_w;       /* padding before the first column */
    int32_t dilation_h;
    int32_t dilation_w;
    int32_t patch;       /* k_h * k_w * in_c rounded up to a multiple of 4: one im2col row */
    int32_t zero_point;  /* input zero point: the padding's value */
    int32_t block;       /* output pixels per im2col block */
} dk_conv_fast_params;

/* DEPTHWISE_CONV_2D with depth multiplier 1 on packed records (dk_depthwise_conv_s8_fast). */
typedef struct {
    int32_t in_h;
    int32_t in_w;
    int32_t in_c;        /* channels (a multiple of 4), also the output's */
    int32_t out_w;
    int32_t pixels;      /* output pixels (out_h * out_w) */
    int32_t k_h;
    int32_t k_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_h;       /* padding before the first row */
    int32_t pad_w;       /* padding before the first column */
    int32_t dilation_h;
    int32_t dilation_w;
    int32_t zero_point;  /* input zero point: the padding's value */
    dk_activation activation;
} dk_dw_fast_params;

typedef struct {
    int32_t input_offset;   /* -input zero point */
    int32_t filter_offset;  /* -filter zero point (0 for int8 weights) */
    int32_t output_offset;  /* output zero point */
    dk_activation activation;
} dk_fc_params;

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

typedef struct {
    int32_t input1_offset;  /* -zero point */
    int32_t input2_offset;  /* -zero point */
    int32_t output_offset;  /* zero point */
    dk_requant output;
    dk_activation activation;
} dk_mul_params;

typedef struct {
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t needs_rescale;  /* 0 when input and output scales are equal */
    dk_requant output;
} dk_abs_params;

typedef struct {
    int32_t input_zero_point;
    int32_t output_zero_point;
    dk_requant output;
    dk_activation activation;
} dk_relu_params;

typedef struct {
    int32_t input_zero_point;
    int32_t output_zero_point;
    dk_requant output;
} dk_requantize_params;

typedef struct {
    float scale;         /* the output's scale (float32; x / scale in float32) */
    int32_t zero_point;  /* the output's zero point */
} dk_quantize_params;

/* LOGISTIC and TANH: the input rescaled to Q4.27 (Q3.28 for TANH) and the radius
 * beyond which the output saturates. */
typedef struct {
    int32_t input_zero_point;
    int32_t input_range_radius;
    int32_t input_multiplier;
    int32_t input_left_shift;
} dk_logistic_params;

typedef struct {
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} dk_softmax_params;

typedef struct {
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t num_elements;  /* elements averaged into each output */
    dk_requant output;     /* already includes the 1/num_elements factor */
} dk_mean_params;

typedef struct {
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_h;
    int32_t pad_w;
    int32_t filter_h;
    int32_t filter_w;
    dk_activation activation;
} dk_pool_params;

typedef struct {
    int32_t input_offset;   /* -input zero point */
    int32_t alpha_offset;   /* -alpha zero point */
    int32_t output_offset;  /* output zero point */
    dk_requant positive;    /* input_scale / output_scale */
    dk_requant negative;    /* input_scale * alpha_scale / output_scale */
} dk_prelu_params;

typedef struct {
    int32_t input_dims[4];  /* the input as four dimensions (leading 1s added) */
    int32_t before[4];      /* elements of padding before, per dimension */
    int32_t after[4];       /* and after */
    int32_t value;          /* the padding value (output zero point or PADV2's) */
} dk_pad_params;

typedef struct {
    int32_t input_dims[4];  /* the input as four dimensions (leading 1s added) */
    int32_t perm[4];        /* output dimension d is input dimension perm[d] */
} dk_transpose_params;

typedef struct {
    float scale;         /* the input's scale (float32, widened to double per element) */
    int32_t zero_point;  /* the input's zero point */
} dk_dequantize_params;

typedef struct {
    int32_t batches;
    int32_t input_height;
    int32_t input_width;
    int32_t depth;        /* channels: bytes copied per pixel */
    int32_t output_height;
    int32_t output_width;
    const int32_t *rows;  /* output_height input rows, one per output row */
    const int32_t *cols;  /* output_width input columns, one per output column */
} dk_resize_nearest_params;

typedef struct {
    int32_t batches;
    int32_t input_height;
    int32_t input_width;
    int32_t depth;        /* channels */
    int32_t output_height;
    int32_t output_width;
    const int32_t *rows;  /* per output row: upper input row, lower input row, weight of the
                             lower (of 1024) */
    const int32_t *cols;  /* per output column: left input column, right one, weight of the
                             right (of 1024) */
} dk_resize_bilinear_params;

typedef struct {
    int32_t start;     /* input element of the first output element */
    int32_t count[4];  /* output elements along each of four loops, outermost first */
    int32_t step[4];   /* input elements between neighbours along each loop (may be negative) */
} dk_strided_slice_params;

typedef struct {
    int32_t input_multiplier;    /* input differences into Q5.26 */
    int32_t input_left_shift;
    int32_t reverse_multiplier;  /* Q5.26 back to input units (below one) */
    int32_t reverse_shift;       /* its shift (<= 0) */
    int32_t diff_min;            /* differences below this contribute no exp */
} dk_log_softmax_params;

typedef struct {
    int32_t batch[3];           /* output batch extents, outermost first (1 when unused) */
    int32_t lhs_batch_step[3];  /* lhs elements between batches (0: broadcast) */
    int32_t rhs_batch_step[3];  /* rhs elements between batches (0: broadcast) */
    int32_t rows;               /* M */
    int32_t cols;               /* N */
    int32_t depth;              /* K */
    int32_t lhs_row_step;       /* lhs elements between rows i */
    int32_t lhs_depth_step;     /* lhs elements between depths k */
    int32_t rhs_depth_step;     /* rhs elements between depths k */
    int32_t rhs_col_step;       /* rhs elements between columns j */
    int32_t lhs_offset;         /* -lhs zero point */
    int32_t rhs_offset;         /* -rhs zero point */
    int32_t output_zero_point;
    dk_requant output;
} dk_batch_matmul_params;

/* A copy in which each output axis reads the input at an offset of its own
 * coordinate: output (i0, i1, i2, i3) = input[offsets0[i0] + offsets1[i1] + ...]. */
typedef struct {
    int32_t dims[4];         /* output extents, outermost first (1 when unused) */
    const int32_t *offsets;  /* per output axis in turn, dims[d] input offsets */
} dk_index_map_params;

typedef struct {
    int32_t input1_offset;  /* -zero point */
    int32_t input2_offset;  /* -zero point */
    int32_t output_offset;  /* zero point */
    int32_t left_shift;     /* 7 for int8 */
    dk_requant input1;      /* below one: to the common scale */
    dk_requant input2;      /* below one: to the common scale */
    dk_requant output;      /* the squared difference to the output scale */
} dk_squared_difference_params;

/* SPACE_TO_BATCH_ND: output batch (dy * block[1] + dx) * B + b at (h, w) is
 * input batch b at (h * block[0] + dy - pad_before[0], w * block[1] + dx - pad_before[1]). */
typedef struct {
    int32_t input_dims[4];   /* batch, height, width, channels (width 1 for rank 3) */
    int32_t output_dims[4];  /* batch, height, width, channels */
    int32_t block[2];        /* block height, width */
    int32_t pad_before[2];   /* padding rows on top, columns on the left */
    int32_t pad_value;       /* the byte written where the output is padding */
} dk_space_to_batch_params;

/* Soft threshold + residual: ADD(r, tau) -> MINIMUM(., min_value) ; SUB(r, tau) ReLU ;
 * ADD(sub, min) ; ADD(that, shortcut). Each dk_add_params as for dk_add_s8 with
 * input1 = the first operand of that operator in the model. */
typedef struct {
    dk_add_params add;    /* a = r + tau */
    dk_add_params sub;    /* s = r - tau, ReLU */
    dk_add_params sum;    /* y = s + m */
    dk_add_params res;    /* z = y + shortcut (unused without a shortcut) */
    int32_t min_value;    /* m = min(a, min_value), raw int8 */
    int32_t sum_s_first;  /* 1: sum's input1 is s; 0: it is m */
    int32_t res_y_first;  /* 1: res's input1 is y; 0: it is the shortcut */
} dk_shrink_params;

/* Per-channel MUL then ADD of constants (a batch normalisation): u = x * scale[c],
 * y = u + shift[c] with the ADD's fused activation. stage 0 stores u, 1 stores y. */
typedef struct {
    dk_mul_params mul;
    dk_add_params add;
    int32_t mul_x_first;  /* 1: the MUL's input1 is x; 0: it is the scale constant */
    int32_t add_u_first;  /* 1: the ADD's input1 is u; 0: it is the shift constant */
} dk_channel_affine_params;

/* CONV_2D with a 1 x K filter, dilation 1, no groups, over [1, 1, in_w, in_c]
 * (dk_conv1d_s8, dk_conv1d_s8_fast; packed layouts in kernels/conv1d.h). */
typedef struct {
    int32_t input_offset;
    int32_t output_offset;
    int32_t in_w;
    int32_t in_c;
    int32_t out_w;
    int32_t out_c;
    int32_t kernel;
    int32_t stride;
    int32_t pad;        /* zero taps before the first input column */
    int32_t taps;       /* kernel * in_c, padded up to a multiple of 4 */
    dk_activation activation;
    int32_t small_acc;  /* 1: every |accumulator << left shift| < 2^30 (checked by the
                           generator), so the short exact requantization applies */
    int32_t block;      /* output columns per widened block (even, >= 2): the scratch holds
                           (block - 1) * stride + kernel columns */
    int32_t weights8;   /* dk_conv1d_s8_fast: 1 when the records hold int8 weights (size mode,
                           half the flash), 0 for int16 (speed) */
} dk_conv1d_params;

/* byte offsets of dk_conv1d_params fields read by assembly (checked with offsetof) */
#define DK_CONV1D_PARAMS_IN_C 12
#define DK_CONV1D_PARAMS_OUT_C 20
#define DK_CONV1D_PARAMS_STRIDE 28
#define DK_CONV1D_PARAMS_TAPS 36

#endif /* DK_PARAMS_H */
