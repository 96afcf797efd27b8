"""CONV_2D and DEPTHWISE_CONV_2D: the reference kernels, and the fast CONV_2D path (1 x 1
convolutions as one Conv1D over the pixels, every other filter through an im2col of a few
pixels at a time; both on dk_conv1d_s8_fast's packed records), and the fast depthwise path
(depth multiplier 1, channels in 4s: dk_depthwise_conv_s8_fast). 1 x K convolutions take
conv1d.py."""

from __future__ import annotations

import numpy as np

from firmware_gen import quant
from firmware_gen.params import ACTIVATION, CHANNEL_REQUANT, DIMS, Struct, dims, field
from firmware_gen.ops.base import Step, act_name, is_act, numel, register, register_fusion, stream_lead

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


def conv_params(em, p: str, q, geo: dict, x, w, y, b) -> str:
    """The parameter block of a reference convolution (CONV_2D, DEPTHWISE_CONV_2D,
    TRANSPOSE_CONV): per-channel requantization, {p}_p, the three shapes; returns the bias
    argument of the call."""
    channel_requant(em, p, q)
    em.params(CONV_PARAMS, f"{p}_p", q, **geo)
    for nm, t in (("in", x), ("w", w), ("out", y)):
        em.params(DIMS, f"{p}_{nm}", dims(t.shape))
    return em.ptr(b, "bias") if b is not None else "NULL"


def _emit(em, k, op, depthwise: bool):
    x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    b = op.inputs[2] if len(op.inputs) > 2 else None
    q, geo = prepare(op, depthwise)
    o = op.options
    em.comment(k, op, f"stride {o['strideH']}x{o['strideW']} pad {padding(op)} ({geo['pad_h']},{geo['pad_w']}) "
                      f"act {act_name(op)}")
    p = f"L{k}"
    bias = conv_params(em, p, q, geo, x, w, y, b)
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


# --- the fast path: dk_conv1d_s8_fast over pixels (1 x 1) or over im2col rows -----------------

# The filter window of the fast 2D paths (dk_conv_fast_params, dk_dw_fast_params)
WINDOW_FIELDS = [
    field("k_h", "int32_t"),
    field("k_w", "int32_t"),
    field("stride_h", "int32_t"),
    field("stride_w", "int32_t"),
    field("pad_h", "int32_t", comment="padding before the first row"),
    field("pad_w", "int32_t", comment="padding before the first column"),
    field("dilation_h", "int32_t"),
    field("dilation_w", "int32_t"),
]

CONV_FAST_PARAMS = Struct("dk_conv_fast_params", [
    field("in_h", "int32_t"),
    field("in_w", "int32_t"),
    field("in_c", "int32_t"),
    field("out_w", "int32_t"),
    field("pixels", "int32_t", comment="output pixels (out_h * out_w)"),
    *WINDOW_FIELDS,
    field("patch", "int32_t", comment="k_h * k_w * in_c rounded up to a multiple of 4: one im2col row"),
    field("zero_point", "int32_t", comment="input zero point: the padding's value"),
    field("block", "int32_t", comment="output pixels per im2col block"),
], doc="CONV_2D through im2col and dk_conv1d_s8_fast (dk_conv_s8_fast): the im2col of block\n"
       "pixels, then a 1 x 1 Conv1D over those rows.")

# Pixels per im2col block: the largest whose buffers (int8 rows and their int16 image) stay
# under this many bytes, at least 2 (dk_conv1d_s8_fast computes column pairs).
CONV_FAST_BLOCKS = (16, 8, 4, 2)
CONV_FAST_SOFT_LIMIT = 4096


def _align(n: int, a: int = 16) -> int:
    return -(-n // a) * a


def fast_quant(op, num_channels: int):
    """TFLM's requantization of a CONV_2D / FULLY_CONNECTED, and whether dk_conv1d_s8_fast's
    arithmetic is exact for it (small accumulators, shifts in [-22, -1])."""
    from firmware_gen.ops import conv1d
    x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    q = quant.prepare_conv(x.scale, x.zero_point, w.scales, y.scale, y.zero_point, act_name(op),
                           num_channels=num_channels)
    b = op.inputs[2] if len(op.inputs) > 2 else None
    small = conv1d.small_accumulators(w.data, None if b is None else b.data, q)
    return q, conv1d.conv1d_fast(4, 1, small, q)


def fast_geometry(op) -> dict | None:
    """The fast path's view of a CONV_2D (batch 1, no groups, constant weights), or None.
    ``direct``: a 1 x 1, stride 1 convolution on channels in multiples of 4 is one Conv1D
    over the pixels, without im2col."""
    from firmware_gen.ops import conv1d
    x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    b = op.inputs[2] if len(op.inputs) > 2 else None
    if (op.opcode != "CONV_2D" or conv1d.conv1d_geometry(op) is not None or len(x.shape) != 4
            or x.shape[0] != 1 or w.data is None or w.shape[3] != x.shape[3] or w.type != "INT8"
            or (b is not None and b.data is None)):
        return None
    q, ok = fast_quant(op, int(w.shape[0]))
    if not ok:
        return None
    _, geo = prepare(op, depthwise=False)
    in_h, in_w, in_c = (int(d) for d in x.shape[1:])
    k_h, k_w = int(w.shape[1]), int(w.shape[2])
    out_h, out_w = int(y.shape[1]), int(y.shape[2])
    direct = (k_h == k_w == 1 and geo["stride_h"] == geo["stride_w"] == 1 and in_c % 4 == 0
              and (out_h, out_w) == (in_h, in_w))
    return fast_plan(in_h, in_w, in_c, out_h, out_w, int(w.shape[0]), k_h, k_w, geo, x.zero_point, direct)


def fast_plan(in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, geo, zero_point, direct) -> dict:
    """Parameters and scratch of the fast path (dk_conv1d_s8_fast, dk_conv_s8_fast)."""
    from firmware_gen.ops import conv1d
    pixels = out_h * out_w
    if direct:   # dk_conv1d_s8_fast over the pixels: scratch for its widened columns only
        block = min(conv1d.conv1d_block(in_c, 1, 1), max(2, pixels + pixels % 2))
        cols, scratch = 0, conv1d.conv1d_scratch_bytes(in_c, 1, 1, min(block, pixels))
        patch = in_c
    else:
        patch = -(-(k_h * k_w * in_c) // 4) * 4
        def need(b):
            return _align(b * patch) + conv1d.conv1d_scratch_bytes(patch, 1, 1, b)
        block = next((b for b in CONV_FAST_BLOCKS if need(b) <= CONV_FAST_SOFT_LIMIT), CONV_FAST_BLOCKS[-1])
        block = min(block, max(2, pixels + pixels % 2))
        cols, scratch = _align(block * patch), need(block)
    return {"direct": direct, "in_h": in_h, "in_w": in_w, "in_c": in_c, "out_w": out_w, "pixels": pixels,
            "out_c": out_c, "k_h": k_h, "k_w": k_w, **geo, "patch": patch, "zero_point": zero_point,
            "block": block, "cols": cols, "scratch": scratch}


def fast_lead(geo: dict) -> int:
    """dk_conv_s8_fast copies a block of pixels' patches (im2col) before writing those
    pixels, and the direct path widens a block of pixels first: both stream. A pixel's
    lowest input byte is counted from its first input row (the padding clamped away)."""
    if geo["direct"]:
        first = lambda e: e * geo["in_c"]   # noqa: E731
    else:
        row = geo["in_w"] * geo["in_c"]
        first = lambda e: max(0, (e // geo["out_w"]) * geo["stride_h"] - geo["pad_h"]) * row   # noqa: E731
    return stream_lead(geo["pixels"], geo["block"], geo["out_c"], first)


def match_fast(ops, k, users, outputs) -> Step | None:
    """A CONV_2D the fast path takes: one step of its own, with scratch memory."""
    op = ops[k]
    if op.opcode != "CONV_2D":
        return None
    geo = fast_geometry(op)
    if geo is None:
        return None
    return Step("conv_fast", [k], reads=[t.index for t in op.inputs if is_act(t)], scratch=geo["scratch"],
                info=geo, lead=fast_lead)


def emit_fast(em, st: Step, what: str) -> None:
    """The C of a fast-path layer (CONV_2D, FULLY_CONNECTED): the records packed for
    dk_conv1d_s8_fast, the Conv1D view, and either that kernel over the pixels (direct) or
    dk_conv_s8_fast over im2col blocks."""
    from firmware_gen.ops import conv1d
    k = st.last
    op = em.ops[k]
    x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    b = op.inputs[2] if len(op.inputs) > 2 else None
    geo = st.info
    q, _ = fast_quant(op, geo["out_c"])
    direct = geo["direct"]
    weights8 = em.weights8(k, uses=geo["pixels"] if direct else 2)
    em.comment(k, op, f"{what}; {'1 x 1 over the pixels' if direct else 'im2col'}: "
                      f"{geo['patch']} taps per channel, {geo['block']} pixels per block, "
                      f"dk_conv1d_s8_fast records ({'int8' if weights8 else 'int16'} weights); "
                      f"act {act_name(op)}")
    p = f"L{k}"
    width = geo["pixels"] if direct else geo["block"]
    em.params(conv1d.CONV1D_PARAMS, f"{p}_p", input_offset=q.input_offset, output_offset=q.output_offset,
              in_w=width, in_c=geo["patch"], out_w=width, out_c=geo["out_c"], kernel=1, stride=1, pad=0,
              taps=geo["patch"], activation=q.activation, small_acc=1, block=geo["block"],
              weights8=int(weights8))
    weights = w.data.reshape(geo["out_c"], -1)
    packed = em.packed_const(w, conv1d.pack_conv1d_fast(weights, None if b is None else b.data, q, geo["patch"],
                                                        weights8), f"{p}_packed", "dk_conv1d_s8_fast")
    base = em.placed[("scratch", em.j)].offset
    scratch = f"(int16_t *)(arena + {base + geo['cols']})"
    if direct:
        fn = "dk_fully_connected_s8_fast" if geo["pixels"] == 1 else "dk_conv1d_s8_fast"
        em.kernel_name(fn)
        em.call(f"{fn}(&{p}_p, {em.ptr(x)}, {packed}, {scratch}, {em.ptr(y)})")
        return
    em.params(CONV_FAST_PARAMS, f"{p}_g", geo)
    em.kernel_name("dk_conv_s8_fast")
    em.call(f"dk_conv_s8_fast(&{p}_g, &{p}_p, {em.ptr(x)}, {packed}, (int8_t *)(arena + {base}), "
            f"{scratch}, {em.ptr(y)})")


@register_fusion("conv_fast", match_fast, kernel_name="dk_conv_s8_fast", kernels=("conv.c", "conv1d.c"),
                 tests=("tests/test_kernels_fast.py::test_fast_conv2d_and_fc_are_bit_exact_to_tflm",))
def emit_conv_fast(em, st: Step):
    emit_fast(em, st, "CONV_2D")


# --- the fast DEPTHWISE_CONV_2D: depth multiplier 1, channels in 4s (depthwise_conv.c) ----------

DW_FAST_PARAMS = Struct("dk_dw_fast_params", [
    field("in_h", "int32_t"),
    field("in_w", "int32_t"),
    field("in_c", "int32_t", comment="channels (a multiple of 4), also the output's"),
    field("out_w", "int32_t"),
    field("pixels", "int32_t", comment="output pixels (out_h * out_w)"),
    *WINDOW_FIELDS,
    field("zero_point", "int32_t", comment="input zero point: the padding's value"),
    field("activation", ACTIVATION),
], doc="DEPTHWISE_CONV_2D with depth multiplier 1 on packed records (dk_depthwise_conv_s8_fast).")

DW_FAST_MAX_TAPS = 25   # DK_DW_MAX_TAPS of depthwise_conv.c


def depthwise_fast_geometry(op) -> dict | None:
    """The fast depthwise path's view of a DEPTHWISE_CONV_2D, or None: batch 1, depth multiplier
    1, channels in multiples of 4, at most 25 taps, constant weights, and dk_conv1d_s8_fast's
    requantization exact (small accumulators, shifts in [-22, -1])."""
    from firmware_gen.ops import conv1d
    x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    b = op.inputs[2] if len(op.inputs) > 2 else None
    if (op.opcode != "DEPTHWISE_CONV_2D" or len(x.shape) != 4 or x.shape[0] != 1 or w.data is None
            or w.type != "INT8" or op.options.get("depthMultiplier", 1) != 1 or w.shape[3] != x.shape[3]
            or x.shape[3] % 4 or w.shape[1] * w.shape[2] > DW_FAST_MAX_TAPS
            or (b is not None and b.data is None)):
        return None
    c = int(x.shape[3])
    q, geo = prepare(op, depthwise=True)
    per_channel_w = np.asarray(w.data).reshape(-1, c).T
    small = conv1d.small_accumulators(per_channel_w, None if b is None else b.data, q)
    if not conv1d.conv1d_fast(4, 1, small, q):
        return None
    return {"in_h": int(x.shape[1]), "in_w": int(x.shape[2]), "in_c": c, "out_w": int(y.shape[2]),
            "pixels": int(y.shape[1] * y.shape[2]), "k_h": int(w.shape[1]), "k_w": int(w.shape[2]),
            **geo, "zero_point": int(x.zero_point), "scratch": c}


def pack_depthwise_fast(w: np.ndarray, bias, q: quant.ChannelQuant) -> np.ndarray:
    """One record per group of 4 channels for dk_depthwise_conv_s8_fast, int16 units: the bias
    with input_offset * sum(w) folded in, times 2 (int32 x 4); per tap the weights of channels
    0 2 1 3 times 2; per channel multiplier, rounding 2^(e-1) + (zp << e), e (int32 each)."""
    c = w.shape[-1]
    taps = np.asarray(w, np.int64).reshape(-1, c)                        # [taps, c]
    groups = c // 4
    wq = (taps.reshape(-1, groups, 4)[..., [0, 2, 1, 3]] * 2).transpose(1, 0, 2).reshape(groups, -1)
    def per_channel(values):
        return np.broadcast_to(np.asarray(values, np.int64), (c,)) if np.size(values) == 1 \
            else np.asarray(values, np.int64)
    b = (per_channel(0 if bias is None else np.asarray(bias, np.int64))
         + taps.sum(axis=0) * int(q.input_offset)) * 2
    m = per_channel(q.multipliers)
    e = -per_channel(q.shifts)
    rnd = (1 << (e - 1)) + (int(q.output_offset) << e)
    def words(*cols):
        v = np.stack(cols, axis=1).reshape(groups, -1)
        v = ((v + 2**31) % 2**32 - 2**31).astype("<i4")
        return v.view("<i2").astype(np.int16)
    rec = np.concatenate([words(b), wq.astype(np.int16), words(m, rnd, e)], axis=1)
    return np.ascontiguousarray(rec).reshape(-1)


def match_depthwise_fast(ops, k, users, outputs) -> Step | None:
    op = ops[k]
    if op.opcode != "DEPTHWISE_CONV_2D":
        return None
    geo = depthwise_fast_geometry(op)
    if geo is None:
        return None
    return Step("dw_fast", [k], reads=[t.index for t in op.inputs if is_act(t)], scratch=geo["scratch"],
                info=geo)


@register_fusion("dw_fast", match_depthwise_fast, kernel_name="dk_depthwise_conv_s8_fast",
                 kernels=("depthwise_conv.c",),
                 tests=("tests/test_kernels_fast.py::test_fast_depthwise_conv2d_is_bit_exact_to_tflm",))
def emit_depthwise_fast(em, st: Step):
    k = st.last
    op = em.ops[k]
    x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    b = op.inputs[2] if len(op.inputs) > 2 else None
    q, _ = prepare(op, depthwise=True)
    geo = st.info
    o = op.options
    em.comment(k, op, f"stride {o['strideH']}x{o['strideW']} pad {padding(op)} ({geo['pad_h']},{geo['pad_w']}) "
                      f"act {act_name(op)}; dk_depthwise_conv_s8_fast: one int16 record per 4 channels")
    p = f"L{k}"
    em.params(DW_FAST_PARAMS, f"{p}_p", geo, activation=q.activation)
    packed = em.packed_const(w, pack_depthwise_fast(w.data, None if b is None else b.data, q),
                             f"{p}_packed", "dk_depthwise_conv_s8_fast")
    scratch = f"(int8_t *)(arena + {em.placed[('scratch', em.j)].offset})"
    em.call(f"dk_depthwise_conv_s8_fast(&{p}_p, {em.ptr(x)}, {packed}, {scratch}, {em.ptr(y)})")
