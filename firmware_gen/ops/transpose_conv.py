"""TRANSPOSE_CONV (int8, per-channel or per-tensor weights, optional int32 bias).

TFLM scatters every input pixel through the filter into an int32 buffer of the output's
size, then adds the bias and requantizes per channel (input_scale * filter_scale[c] /
output_scale, as CONV_2D; clamped to int8: TFLM applies no fused activation here). The
kernel gathers instead: each output sums the taps whose input pixel lands on it, the same
integer terms, so the same int32 sum, without the buffer. Padding is TFLM's: what a forward
convolution from the output's size back to the input's would pad (SAME / VALID).
"""

from __future__ import annotations

from drsn_edge.errors import UserError
from firmware_gen import quant
from firmware_gen.ops.base import act_name, layer_name, numel, register
from firmware_gen.ops.conv import conv_params, padding


def prepare(k, op):
    w, x, y = op.inputs[1], op.inputs[2], op.outputs[0]
    where = f"op {k} TRANSPOSE_CONV ({layer_name(y)})"
    if len(x.shape) != 4 or len(y.shape) != 4:
        raise UserError(f"{where} is not 2-D NHWC; the compiled runtime takes NHWC transpose convolutions")
    if act_name(op) != "NONE":
        raise UserError(f"{where} has a fused {act_name(op)}; the compiled runtime takes transpose "
                        f"convolutions without one")
    if w.zero_points.size and int(abs(w.zero_points).max()) != 0:
        raise UserError(f"{where} has filter zero points other than 0; TFLM takes symmetric int8 filters")
    o = op.options
    sh, sw = int(o["strideH"]), int(o["strideW"])
    # TFLM: the padding of a forward convolution from the output's size to the input's.
    _, ph = quant.conv_output_size(y.shape[1], w.shape[1], sh, 1, padding(op))
    _, pw = quant.conv_output_size(y.shape[2], w.shape[2], sw, 1, padding(op))
    q = quant.prepare_conv(x.scale, x.zero_point, w.scales, y.scale, y.zero_point, "NONE",
                           num_channels=w.shape[0])
    return q, {"stride_h": sh, "stride_w": sw, "pad_h": ph, "pad_w": pw, "dilation_h": 1, "dilation_w": 1}


def macs(op) -> int:
    w, x = op.inputs[1].shape, op.inputs[2].shape    # filter [out_c, kh, kw, in_c]
    return numel(x) * w[0] * w[1] * w[2]


@register("TRANSPOSE_CONV", kernels=("transpose_conv.c",), macs=macs,
          tests=("tests/test_kernels.py::test_transpose_conv_matches_tflm",
                 "tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models"))
def emit(em, k, op):
    w, x, y = op.inputs[1], op.inputs[2], op.outputs[0]
    b = op.inputs[3] if len(op.inputs) > 3 else None
    q, geo = prepare(k, op)
    em.comment(k, op, f"stride {geo['stride_h']}x{geo['stride_w']} pad {padding(op)} "
                      f"({geo['pad_h']},{geo['pad_w']}); each output gathers the taps that land on it")
    p = f"L{k}"
    bias = conv_params(em, p, q, geo, x, w, y, b)
    em.call(f"dk_transpose_conv_s8(&{p}_p, &{p}_q, &{p}_in, {em.ptr(x)}, &{p}_w, {em.ptr(w, 'filter')}, "
            f"{bias}, &{p}_out, {em.ptr(y)})")
