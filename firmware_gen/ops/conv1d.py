"""CONV_2D with a 1 x K filter (what Conv1D becomes): dk_conv1d_s8 on int8 weights packed
for its inner loop, or dk_conv1d_s8_fast (int16 records, assembly on DSP cores) when the
layer qualifies. Layout of the packed data: runtime/README.md and kernels/conv1d.h."""

from __future__ import annotations

import numpy as np

from firmware_gen import quant
from firmware_gen.params import ACTIVATION, Struct, field
from firmware_gen.ops.base import Step, act_name, is_act, register_fusion, stream_lead
from firmware_gen.ops.conv import channel_requant


CONV1D_PARAMS = Struct("dk_conv1d_params", [
    field("input_offset", "int32_t"),
    field("output_offset", "int32_t"),
    field("in_w", "int32_t"),
    field("in_c", "int32_t"),
    field("out_w", "int32_t"),
    field("out_c", "int32_t"),
    field("kernel", "int32_t"),
    field("stride", "int32_t"),
    field("pad", "int32_t", comment="zero taps before the first input column"),
    field("taps", "int32_t", comment="kernel * in_c, padded up to a multiple of 4"),
    field("activation", ACTIVATION),
    field("small_acc", "int32_t", comment="1: every |accumulator << left shift| < 2^30 (checked by the "
                                          "generator), so the short exact requantization applies"),
    field("block", "int32_t", comment="output columns per widened block (even, >= 2): the scratch holds "
                                      "(block - 1) * stride + kernel columns"),
    field("weights8", "int32_t", comment="dk_conv1d_s8_fast: 1 when the records hold int8 weights (size "
                                         "mode, half the flash), 0 for int16 (speed)"),
], doc="CONV_2D with a 1 x K filter, dilation 1, no groups, over [1, 1, in_w, in_c]\n"
       "(dk_conv1d_s8, dk_conv1d_s8_fast; packed layouts in kernels/conv1d.h).",
   asm_offsets=("in_c", "out_c", "stride", "taps"))


def conv1d_geometry(op) -> dict | None:
    """The 1-D view of a CONV_2D that dk_conv1d_s8 runs, or None when it does not apply."""
    if op.opcode != "CONV_2D":
        return None
    x, w = op.inputs[0], op.inputs[1]
    o = op.options
    if len(x.shape) != 4 or x.shape[0] != 1 or x.shape[1] != 1 or w.shape[1] != 1:
        return None
    if w.shape[3] != x.shape[3] or o.get("dilationWFactor", 1) != 1 or o.get("strideH", 1) != 1:
        return None
    pad = "SAME" if o.get("padding", 0) == 0 else "VALID"
    out_w, pad_w = quant.conv_output_size(x.shape[2], w.shape[2], o["strideW"], 1, pad)
    if out_w != op.outputs[0].shape[2]:
        return None
    kernel, in_c = int(w.shape[2]), int(x.shape[3])
    taps = -(-(kernel * in_c) // 4) * 4
    block = conv1d_block(in_c, kernel, int(o["strideW"]))
    return {"in_w": int(x.shape[2]), "in_c": in_c, "out_w": int(out_w), "out_c": int(w.shape[0]),
            "kernel": kernel, "stride": int(o["strideW"]), "pad": int(pad_w), "taps": taps,
            "block": block, "scratch": conv1d_scratch_bytes(in_c, kernel, int(o["strideW"]), block)}



# Must match DK_CONV1D_SLACK in runtime/kernels/conv1d.h (tests/test_kernels_fast.py checks
# dk_conv1d_scratch_bytes against conv1d_scratch_bytes).
CONV1D_SLACK = 8
# Output columns widened at once: the largest of these whose scratch stays under this many
# bytes to begin with; plan_arena narrows a block further when its scratch sets the arena size.
CONV1D_BLOCKS = (16, 8, 4)
CONV1D_SCRATCH_SOFT_LIMIT = 1024


def conv1d_scratch_bytes(in_c: int, kernel: int, stride: int, block: int) -> int:
    return 2 * (((block - 1) * stride + kernel) * in_c + CONV1D_SLACK)


def conv1d_block(in_c: int, kernel: int, stride: int) -> int:
    for block in CONV1D_BLOCKS:
        if conv1d_scratch_bytes(in_c, kernel, stride, block) <= CONV1D_SCRATCH_SOFT_LIMIT:
            return block
    return CONV1D_BLOCKS[-1]


def conv1d_small_acc(op, q: quant.ChannelQuant) -> bool:
    """True when no accumulator of this convolution, shifted left by its channel's shift, can
    reach 2^30 in magnitude for any int8 input (so dk_fast_mbqm is exact)."""
    bias = op.inputs[2].data if len(op.inputs) > 2 and op.inputs[2] is not None else None
    return small_accumulators(op.inputs[1].data, bias, q)


def small_accumulators(weights: np.ndarray, bias, q: quant.ChannelQuant) -> bool:
    """The bound behind conv1d_small_acc: per output channel
    sum|w| * max|x + input_offset| + |bias|, shifted left by the channel's shift, < 2^30."""
    w = np.asarray(weights, dtype=np.int64).reshape(np.shape(weights)[0], -1)
    b = np.zeros(w.shape[0], np.int64) if bias is None else np.abs(np.asarray(bias, np.int64))
    x_max = 128 + abs(q.input_offset)   # max |x + input_offset| over int8 x
    bound = np.abs(w).sum(axis=1) * x_max + b
    left = np.maximum(np.asarray(q.shifts, dtype=np.int64), 0)
    return bool(np.all((bound << left) < 2**30))


def conv1d_wide(in_c: int, stride: int) -> bool:
    """The int16 layout of dk_conv1d_s8_fast applies (conv1d.h): every output column's taps
    start on a group of 4 of the image."""
    return (in_c * stride) % 4 == 0


def pack_conv1d(w: np.ndarray, taps: int, wide: bool = False) -> np.ndarray:
    """Weights [out_c, 1, K, in_c] in dk_conv1d_s8's layout: channel pairs, each pair's taps
    interleaved four at a time, every group of four stored in the order 0, 2, 1, 3; int8, or
    int16 (sign-extended at generation time) for dk_conv1d_s8_fast's records."""
    out_c = w.shape[0]
    flat = np.zeros((out_c + out_c % 2, taps), dtype=np.int16 if wide else np.int8)
    flat[:out_c, :w[0].size] = w.reshape(out_c, -1)
    groups = flat.reshape(-1, 2, taps // 4, 4)[..., [0, 2, 1, 3]]      # [pair, ch, group, 4]
    return np.ascontiguousarray(groups.transpose(0, 2, 1, 3)).reshape(-1)


def conv1d_fast(in_c: int, stride: int, small_acc: bool, q: quant.ChannelQuant) -> bool:
    """dk_conv1d_s8_fast applies (conv1d.h): the wide layout, small accumulators, and
    every channel's right shift e = -shift in [1, 22] (left shift 1, folded into the weights;
    the zero point folded into the rounding constant)."""
    shifts = np.asarray(q.shifts, dtype=np.int64)
    return (conv1d_wide(in_c, stride) and bool(small_acc)
            and bool(np.all(shifts <= -1)) and bool(np.all(shifts >= -22)))


def pack_conv1d_fast(w: np.ndarray, bias, q: quant.ChannelQuant, taps: int, weights8: bool = False) -> np.ndarray:
    """One record per channel pair for dk_conv1d_s8_fast, as int16 (conv1d.h): the bias with
    input_offset * sum(w) folded in (the kernel's image holds the raw input), times 2 (int32
    pair); the wide-layout weights times 2; then per channel multiplier, rounding
    2^(e-1) + (zp << e) and e (int32 each). weights8 (size mode): the bias not doubled (the
    kernel doubles the accumulator) and the weights int8 in tap order, channel o's 4 bytes then
    o+1's per group of 4 taps, two bytes to an int16 unit."""
    out_c = w.shape[0]
    pairs = (out_c + 1) // 2
    if weights8:
        flat = np.zeros((2 * pairs, taps), np.int8)
        flat[:out_c, :w[0].size] = np.asarray(w).reshape(out_c, -1)
        groups = flat.reshape(pairs, 2, taps // 4, 4).transpose(0, 2, 1, 3)      # [pair, group, ch, 4]
        weights = np.ascontiguousarray(groups).reshape(pairs, 2 * taps).view("<i2").astype(np.int16)
    else:
        weights = (pack_conv1d(w, taps, wide=True).astype(np.int32) * 2).astype(np.int16).reshape(pairs, 2 * taps)
    n = out_c + out_c % 2
    def per_channel(values, pad):
        v = np.broadcast_to(np.asarray(values, dtype=np.int64), (out_c,)) if np.size(values) == 1 \
            else np.asarray(values, dtype=np.int64)
        return np.concatenate([v, np.full(n - out_c, pad, np.int64)])
    wsum = np.asarray(w, np.int64).reshape(out_c, -1).sum(axis=1)
    b = (per_channel(0 if bias is None else np.asarray(bias, np.int64), 0)
         + per_channel(wsum * int(q.input_offset), 0)) * (1 if weights8 else 2)
    m = per_channel(q.multipliers, 0)
    e = -per_channel(q.shifts, -1)
    rnd = (1 << (e - 1)) + (int(q.output_offset) << e)
    def words(*cols):
        v = np.stack(cols, axis=1).reshape(pairs, -1)
        v = ((v + 2**31) % 2**32 - 2**31).astype("<i4")
        return v.view("<i2").astype(np.int16)
    rec = np.concatenate([words(b), weights, words(m, rnd, e)], axis=1)
    return np.ascontiguousarray(rec).reshape(-1)


def lead(geo: dict) -> int:
    """Both kernels widen a block of output columns' input into the scratch before writing
    those columns (kernels/conv1d.h; the Helium and assembly variants too): they stream."""
    return stream_lead(geo["out_w"], geo["block"], geo["out_c"],
                       lambda e: max(0, e * geo["stride"] - geo["pad"]) * geo["in_c"])


def match(ops, k, users, outputs) -> Step | None:
    """A CONV_2D that dk_conv1d_s8 takes: one step of its own, with scratch memory."""
    op = ops[k]
    geo = conv1d_geometry(op)
    if geo is None:
        return None
    return Step("conv1d", [k], reads=[t.index for t in op.inputs if is_act(t)], scratch=geo["scratch"], info=geo,
                lead=lead)


@register_fusion("conv1d", match, kernel_name="dk_conv1d_s8", kernels=("conv1d.c",),
                 tests=("tests/test_kernels_fast.py::test_conv1d_matches_tflm_on_converted_conv1d_layers",
                        "tests/test_kernels_fast.py::test_conv1d_fast_equals_the_reference_conv_on_random_shapes",
                        "tests/test_kernels_fast.py::test_conv1d_kernels_are_bit_exact_on_every_board"))
def emit(em, st: Step):
    k = st.last
    op = em.ops[k]
    x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    b = op.inputs[2] if len(op.inputs) > 2 else None
    geo = st.info
    act = act_name(op)
    q = quant.prepare_conv(x.scale, x.zero_point, w.scales, y.scale, y.zero_point, act, num_channels=w.shape[0])
    small_acc = conv1d_small_acc(op, q)
    fast = conv1d_fast(geo["in_c"], geo["stride"], small_acc, q)
    weights8 = fast and em.weights8(k)
    layout = (f"dk_conv1d_s8_fast: one record (bias, {'int8' if weights8 else 'int16'} weights, "
              "requantization) per channel pair" if fast else
              "dk_conv1d_s8: int8 weights in channel pairs")
    em.comment(k, op, f"1-D: kernel {geo['kernel']} stride {geo['stride']} pad {geo['pad']} act {act}; "
                      f"{geo['taps']} taps per channel, {layout}")
    p = f"L{k}"
    em.params(CONV1D_PARAMS, f"{p}_p", geo, input_offset=q.input_offset, output_offset=q.output_offset,
              activation=q.activation, small_acc=int(small_acc), weights8=int(weights8))
    scratch = f"(int16_t *)(arena + {em.placed[('scratch', em.j)].offset})"
    if fast:
        packed = em.packed_const(w, pack_conv1d_fast(w.data, None if b is None else b.data, q, geo["taps"],
                                                     weights8), f"{p}_packed", "dk_conv1d_s8_fast")
        em.kernel_name("dk_conv1d_s8_fast")
        em.call(f"dk_conv1d_s8_fast(&{p}_p, {em.ptr(x)}, {packed}, {scratch}, {em.ptr(y)})")
        return
    channel_requant(em, p, q)
    packed = em.packed_const(w, pack_conv1d(w.data, geo["taps"]), f"{p}_filter_packed", "dk_conv1d_s8")
    bias = em.ptr(b, "bias") if b is not None else "NULL"
    em.call(f"dk_conv1d_s8_inline(&{p}_p, &{p}_q, {em.ptr(x)}, {packed}, {bias}, {scratch}, {em.ptr(y)})")
