"""CONV_2D and DEPTHWISE_CONV_2D (the reference kernels; 1 x K convolutions take conv1d.py)."""

from __future__ import annotations

from firmware_gen import quant
from firmware_gen.params import ACTIVATION, CHANNEL_REQUANT, DIMS, Struct, dims, field
from firmware_gen.ops.base import act_name, numel, register

CONV_PARAMS = Struct("dk_conv_params", [
    field("input_offset", "int32_t", comment="-input zero point"),
    field("output_offset", "int32_t", comment="output zero point"),
    field("stride_h", "int32_t"),
    field("stride_w", "int32_t"),
    field("pad_h", "int32_t", comment="padding before the first row"),
    field("pad_w", "int32_t", comment="padding before the first column"),
    field("dilation_h", "int32_t"),
    field("dilation_w", "int32_t"),
    field("activation", ACTIVATION),
])


def channel_requant(em, p: str, q: quant.ChannelQuant) -> str:
    """The per-channel multipliers and shifts as const arrays and their dk_channel_requant."""
    em.array("int32_t", f"{p}_mult", q.multipliers)
    em.array("int32_t", f"{p}_shift", q.shifts)
    return em.params(CHANNEL_REQUANT, f"{p}_q", multiplier=f"{p}_mult", shift=f"{p}_shift",
                     per_channel=int(q.per_channel))


def padding(op) -> str:
    return "SAME" if op.options.get("padding", 0) == 0 else "VALID"


def prepare(op, depthwise: bool):
    """TFLM's Prepare: per-channel requantization, offsets, clamp, padding."""
    x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    o = op.options
    _, ph = quant.conv_output_size(x.shape[1], w.shape[1], o["strideH"], o["dilationHFactor"], padding(op))
    _, pw = quant.conv_output_size(x.shape[2], w.shape[2], o["strideW"], o["dilationWFactor"], padding(op))
    channels = w.shape[3] if depthwise else w.shape[0]   # filter is [1,kh,kw,out] or [out,kh,kw,in]
    q = quant.prepare_conv(x.scale, x.zero_point, w.scales, y.scale, y.zero_point, act_name(op),
                           num_channels=channels)
    return q, {"stride_h": o["strideH"], "stride_w": o["strideW"], "pad_h": ph, "pad_w": pw,
               "dilation_h": o["dilationHFactor"], "dilation_w": o["dilationWFactor"]}


def _emit(em, k, op, depthwise: bool):
    x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    b = op.inputs[2] if len(op.inputs) > 2 else None
    q, geo = prepare(op, depthwise)
    o = op.options
    em.comment(k, op, f"stride {o['strideH']}x{o['strideW']} pad {padding(op)} ({geo['pad_h']},{geo['pad_w']}) "
                      f"act {act_name(op)}")
    p = f"L{k}"
    channel_requant(em, p, q)
    em.params(CONV_PARAMS, f"{p}_p", q, **geo)
    for nm, t in (("in", x), ("w", w), ("out", y)):
        em.params(DIMS, f"{p}_{nm}", dims(t.shape))
    bias = em.ptr(b, "bias") if b is not None else "NULL"
    fn = f"dk_depthwise_conv_s8(&{p}_p, &{p}_q, {o['depthMultiplier']}, " if depthwise else f"dk_conv_s8(&{p}_p, &{p}_q, "
    em.call(f"{fn}&{p}_in, {em.ptr(x)}, &{p}_w, {em.ptr(w, 'filter')}, {bias}, &{p}_out, {em.ptr(y)})")


def conv_macs(op) -> int:
    w = op.inputs[1].shape            # [out_c, kh, kw, in_c per group]
    return numel(op.outputs[0].shape) * w[1] * w[2] * w[3]


def depthwise_macs(op) -> int:
    w = op.inputs[1].shape            # [1, kh, kw, out_c]
    return numel(op.outputs[0].shape) * w[1] * w[2]


@register("CONV_2D", kernels=("conv.c",), macs=conv_macs,
          tests=("tests/test_kernels.py::test_conv2d_matches_tflm_on_conv1d_and_2d_kernels",))
def emit_conv(em, k, op):
    _emit(em, k, op, depthwise=False)


@register("DEPTHWISE_CONV_2D", kernels=("depthwise_conv.c",), macs=depthwise_macs,
          tests=("tests/test_kernels.py::test_depthwise_conv2d_matches_tflm",))
def emit_depthwise_conv(em, k, op):
    _emit(em, k, op, depthwise=True)
