"""FULLY_CONNECTED (per-tensor or per-channel weights)."""

from __future__ import annotations

from firmware_gen import quant
from firmware_gen.params import ACTIVATION, Struct, field
from firmware_gen.ops.base import act_name, numel, register
from firmware_gen.ops.conv import channel_requant

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
