"""FULLY_CONNECTED (per-tensor or per-channel weights): the reference kernel, and the fast
path (conv.py's: each batch row an output pixel of a 1 x 1 convolution on dk_conv1d_s8_fast's
packed records, input offset folded into the bias; one row: dk_fully_connected_s8_fast, one
column x one channel pair per pass, LDM + LDRD + 4 SMLAD per 4 taps on DSP cores)."""

from __future__ import annotations

from firmware_gen import quant
from firmware_gen.params import ACTIVATION, Struct, field
from firmware_gen.ops.base import Step, act_name, is_act, numel, register, register_fusion
from firmware_gen.ops.conv import channel_requant, emit_fast, fast_plan, fast_quant

FC_PARAMS = Struct("dk_fc_params", [
    field("input_offset", "int32_t", comment="-input zero point"),
    field("filter_offset", "int32_t", comment="-filter zero point (0 for int8 weights)"),
    field("output_offset", "int32_t", comment="output zero point"),
    field("activation", ACTIVATION),
])


def prepare(op) -> quant.ChannelQuant:
    x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    return quant.prepare_fully_connected(x.scale, x.zero_point, w.scales, y.scale, y.zero_point, act_name(op))


def macs(op) -> int:
    return numel(op.outputs[0].shape) * op.inputs[1].shape[1]


@register("FULLY_CONNECTED", kernels=("fully_connected.c",), macs=macs,
          tests=("tests/test_kernels.py::test_fully_connected_per_channel_weights_match_tflm",
                 "tests/test_kernels.py::test_fully_connected_per_tensor_weights_match_tflm"))
def emit(em, k, op):
    x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    b = op.inputs[2] if len(op.inputs) > 2 else None
    q = prepare(op)
    depth = w.shape[1]
    batches = numel(x.shape) // depth
    em.comment(k, op, f"act {act_name(op)}")
    p = f"L{k}"
    channel_requant(em, p, q)
    em.params(FC_PARAMS, f"{p}_p", q)
    bias = em.ptr(b, "bias") if b is not None else "NULL"
    em.call(f"dk_fully_connected_s8(&{p}_p, &{p}_q, {batches}, {depth}, {w.shape[0]}, "
            f"{em.ptr(x)}, {em.ptr(w, 'weights')}, {bias}, {em.ptr(y)})")


def fast_geometry(op) -> dict | None:
    """The fast path's view of a FULLY_CONNECTED (constant int8 weights and bias): batches x
    depth as pixels x channels of a 1 x 1 convolution; None when its arithmetic does not apply."""
    x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    b = op.inputs[2] if len(op.inputs) > 2 else None
    if (w.data is None or w.type != "INT8" or len(w.shape) != 2 or (b is not None and b.data is None)
            or w.zero_point != 0):
        return None
    _, ok = fast_quant(op, int(w.shape[0]))
    if not ok:
        return None
    depth = int(w.shape[1])
    batches = numel(x.shape) // depth
    geo = {"stride_h": 1, "stride_w": 1, "pad_h": 0, "pad_w": 0, "dilation_h": 1, "dilation_w": 1}
    return fast_plan(1, batches, depth, 1, batches, int(w.shape[0]), 1, 1, geo, x.zero_point,
                     direct=depth % 4 == 0)


def match_fast(ops, k, users, outputs) -> Step | None:
    op = ops[k]
    if op.opcode != "FULLY_CONNECTED":
        return None
    geo = fast_geometry(op)
    if geo is None:
        return None
    return Step("fc_fast", [k], reads=[t.index for t in op.inputs if is_act(t)], scratch=geo["scratch"],
                info=geo)


@register_fusion("fc_fast", match_fast, kernel_name="dk_fully_connected_s8_fast",
                 kernels=("fully_connected.c", "conv.c", "conv1d.c"),
                 tests=("tests/test_kernels_fast.py::test_fast_conv2d_and_fc_are_bit_exact_to_tflm",))
def emit_fc_fast(em, st: Step):
    emit_fast(em, st, "FULLY_CONNECTED")
