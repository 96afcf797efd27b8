"""A batch normalisation left as MUL + ADD of per-channel constants, fused into one pass:
dk_channel_affine_s8."""

from __future__ import annotations

from firmware_gen import quant
from firmware_gen.params import Struct, field
from firmware_gen.ops.add import ADD_PARAMS
from firmware_gen.ops.add import prepare as prepare_add
from firmware_gen.ops.base import (Step, act_name, is_act, numel, only_used_by, per_channel,
                                   positions_channels, register_fusion)
from firmware_gen.ops.mul import MUL_PARAMS

# The fast element-wise arithmetic needs |x << left| < 2^30 (dk_acle.h); a MUL of two
# int8 operands (|product| <= 255^2 < 2^16) allows a left shift of at most 13.
MAX_MUL_LEFT_SHIFT = 13

CHANNEL_AFFINE_PARAMS = Struct("dk_channel_affine_params", [
    field("mul", MUL_PARAMS),
    field("add", ADD_PARAMS),
    field("mul_x_first", "int32_t", comment="1: the MUL's input1 is x; 0: it is the scale constant"),
    field("add_u_first", "int32_t", comment="1: the ADD's input1 is u; 0: it is the shift constant"),
], doc="Per-channel MUL then ADD of constants (a batch normalisation): u = x * scale[c],\n"
       "y = u + shift[c] with the ADD's fused activation. stage 0 stores u, 1 stores y.")


def match(ops, k, users, outputs) -> Step | None:
    """MUL(x, scale[C]) -> ADD(., shift[C]) with constants: a batch normalisation."""
    if k + 1 >= len(ops) or (ops[k].opcode, ops[k + 1].opcode) != ("MUL", "ADD"):
        return None
    mul, add = ops[k], ops[k + 1]
    xs = [t for t in mul.inputs if is_act(t)]
    if len(xs) != 1:
        return None
    x = xs[0]
    lc = positions_channels(x.shape)
    if lc is None:
        return None
    scale = [t for t in mul.inputs if t.index != x.index][0]
    u = mul.outputs[0]
    if scale.data is None or not per_channel(scale, lc[1]) or not only_used_by(users, u, k + 1, outputs):
        return None
    shift = [t for t in add.inputs if t.index != u.index]
    if len(shift) != 1 or shift[0].data is None or not per_channel(shift[0], lc[1]):
        return None
    if tuple(u.shape) != tuple(x.shape) or tuple(add.outputs[0].shape) != tuple(x.shape):
        return None
    q = quant.prepare_mul(mul.inputs[0].scale, mul.inputs[0].zero_point, mul.inputs[1].scale,
                          mul.inputs[1].zero_point, u.scale, u.zero_point)
    if q.output.shift > MAX_MUL_LEFT_SHIFT:
        return None
    return Step("affine", [k, k + 1], reads=[x.index], inplace=x.index, debug=numel(x.shape),
                info={"positions": lc[0], "channels": lc[1], "x": x, "scale": scale, "shift": shift[0],
                      "mul_x_first": mul.inputs[0].index == x.index,
                      "add_u_first": add.inputs[0].index == u.index})


@register_fusion("affine", match, kernel_name="dk_channel_affine_s8", kernels=("channel_affine.c",),
                 tests=("tests/test_kernels_fast.py::test_fused_batch_norm_equals_mul_then_add",
                        "tests/test_kernels_fast.py::test_generated_drsn_with_fused_kernels_is_bit_exact_to_tflm"))
def emit(em, st: Step) -> None:
    mul, add = (em.ops[k] for k in st.ops)
    info = st.info
    em.group_comment(st, "per-channel MUL + ADD of constants (batch normalisation)")
    p = f"L{st.last}"
    a, b = mul.inputs[:2]
    u = mul.outputs[0]
    qm = quant.prepare_mul(a.scale, a.zero_point, b.scale, b.zero_point, u.scale, u.zero_point, act_name(mul))
    em.k = st.ops[0]
    scale = em.ptr(info["scale"], "scale")
    em.k = st.last
    shift = em.ptr(info["shift"], "shift")
    em.params(CHANNEL_AFFINE_PARAMS, f"{p}_p", mul=qm, add=prepare_add(add),
              mul_x_first=int(info["mul_x_first"]), add_u_first=int(info["add_u_first"]))
    L, C = info["positions"], info["channels"]

    def call(out, stage, fn="dk_channel_affine_s8"):
        return f"{fn}(&{p}_p, {L}, {C}, {em.ptr(info['x'])}, {scale}, {shift}, {out}, {stage})"
    em.debug_taps(st, call)
    em.call(call(em.ptr(add.outputs[0]), 1, "dk_channel_affine_s8_inline"))
