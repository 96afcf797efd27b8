/*
 * conv.c - CONV_2D (int8, per-channel weights, int32 bias, groups).
 *
 * Taps that fall into the zero padding are skipped (the padded input value
 * is the zero point, i.e. a zero contribution). For the 1 x K kernels a
 * Conv1D becomes, the height loops collapse to a single iteration.
 *
 * dk_conv_s8_fast (end of file): the fast path for other filters (no groups): an im2col of a
 * block of output pixels, each pixel's k_h x k_w x in_c taps one contiguous row, then
 * dk_conv1d_s8_fast as a 1 x 1 convolution over those rows.
 */
#include <string.h>

#include "conv1d.h"
#include "fixedpoint.h"

void dk_conv_s8(const dk_conv_params *params, const dk_channel_requant *quant,
                const dk_dims *input_dims, const int8_t *input,
                const dk_dims *filter_dims, const int8_t *filter,
                const int32_t *bias,
                const dk_dims *output_dims, int8_t *output)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    const int32_t k_h = filter_dims->h;
    const int32_t k_w = filter_dims->w;
    const int32_t group_c = filter_dims->c; /* input channels per group */
    const int32_t out_h = output_dims->h;
    const int32_t out_w = output_dims->w;
    const int32_t out_c = output_dims->c;
    const int32_t filters_per_group = out_c / (in_c / group_c);
    const int32_t input_offset = params->input_offset;
    int32_t batch, oy, ox, oc, ky, kx, ic;

    for (batch = 0; batch < input_dims->n; ++batch) {
        const int8_t *in_batch = input + batch * in_h * in_w * in_c;
        for (oy = 0; oy < out_h; ++oy) {
            const int32_t y0 = oy * params->stride_h - params->pad_h;
            for (ox = 0; ox < out_w; ++ox) {
                const int32_t x0 = ox * params->stride_w - params->pad_w;
                for (oc = 0; oc < out_c; ++oc) {
                    const int32_t group = oc / filters_per_group;
                    const int8_t *w_oc = filter + oc * k_h * k_w * group_c;
                    int32_t acc = 0;
                    for (ky = 0; ky < k_h; ++ky) {
                        const int32_t iy = y0 + ky * params->dilation_h;
                        if (iy < 0 || iy >= in_h) {
                            continue;
                        }
                        for (kx = 0; kx < k_w; ++kx) {
                            const int32_t ix = x0 + kx * params->dilation_w;
                            const int8_t *px;
                            const int8_t *pw;
                            if (ix < 0 || ix >= in_w) {
                                continue;
                            }
                            px = in_batch + (iy * in_w + ix) * in_c +
                                 group * group_c;
                            pw = w_oc + (ky * k_w + kx) * group_c;
                            for (ic = 0; ic < group_c; ++ic) {
                                acc += pw[ic] * (px[ic] + input_offset);
                            }
                        }
                    }
                    *output++ = dk_conv_out(params, quant, bias, oc, acc);
                }
            }
        }
    }
}

/* Output pixels [first, first + n) as im2col rows of p->patch bytes: the taps in the filter's
 * order (row, column, channel), the input zero point where a tap falls outside the input and
 * after the last tap (whose weights are zero). */
static void dk_conv_im2col(const dk_conv_fast_params *p, const int8_t *input, int32_t first, int32_t n,
                           int8_t *cols)
{
    const int32_t in_c = p->in_c;
    const int32_t row = p->k_w * in_c;
    const int32_t used = p->k_h * row;
    const int zp = (int)p->zero_point;
    int32_t oy = first / p->out_w;
    int32_t ox = first - oy * p->out_w;
    int32_t j, ky, kx;
    for (j = 0; j < n; ++j) {
        int8_t *dst = cols + j * p->patch;
        const int32_t y0 = oy * p->stride_h - p->pad_h;
        const int32_t x0 = ox * p->stride_w - p->pad_w;
        const int32_t inside = p->dilation_w == 1 && x0 >= 0 && x0 + p->k_w <= p->in_w;
        for (ky = 0; ky < p->k_h; ++ky) {
            const int32_t iy = y0 + ky * p->dilation_h;
            if (iy < 0 || iy >= p->in_h) {
                memset(dst, zp, (size_t)row);
            } else if (inside) {      /* the row's taps are contiguous in the input */
                memcpy(dst, input + (iy * p->in_w + x0) * in_c, (size_t)row);
            } else {
                for (kx = 0; kx < p->k_w; ++kx) {
                    const int32_t ix = x0 + kx * p->dilation_w;
                    if (ix < 0 || ix >= p->in_w) {
                        memset(dst + kx * in_c, zp, (size_t)in_c);
                    } else {
                        memcpy(dst + kx * in_c, input + (iy * p->in_w + ix) * in_c, (size_t)in_c);
                    }
                }
            }
            dst += row;
        }
        if (p->patch > used) {
            memset(dst, zp, (size_t)(p->patch - used));
        }
        if (++ox == p->out_w) {
            ox = 0;
            ++oy;
        }
    }
}

void dk_conv_s8_fast(const dk_conv_fast_params *p, const dk_conv1d_params *rows, const int8_t *input,
                     const int16_t *packed, int8_t *cols, int16_t *scratch, int8_t *output)
{
    dk_conv1d_params block = *rows;
    int32_t first;
    for (first = 0; first < p->pixels; first += p->block) {
        const int32_t n = p->pixels - first < p->block ? p->pixels - first : p->block;
        dk_conv_im2col(p, input, first, n, cols);
        block.in_w = n;
        block.out_w = n;
        dk_conv1d_s8_fast(&block, cols, packed, scratch, output + first * rows->out_c);
    }
}
