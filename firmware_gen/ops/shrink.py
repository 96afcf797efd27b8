"""The DRSN's soft threshold (+ residual ADD) fused into one pass, dk_shrink_s8:
ADD(r, tau) -> MINIMUM(., c) ; SUB(r, tau) ReLU ; ADD(s, m) [; ADD(y, shortcut)]."""

from __future__ import annotations

import numpy as np

from firmware_gen import quant
from firmware_gen.params import Struct, field
from firmware_gen.ops.add import ADD_PARAMS, UNUSED
from firmware_gen.ops.add import prepare as prepare_add
from firmware_gen.ops.base import (Step, is_act, numel, only_used_by, per_channel, positions_channels,
                                   register_fusion, same_memory)

SHRINK_PARAMS = Struct("dk_shrink_params", [
    field("add", ADD_PARAMS, comment="a = r + tau"),
    field("sub", ADD_PARAMS, comment="s = r - tau, ReLU"),
    field("sum", ADD_PARAMS, comment="y = s + m"),
    field("res", ADD_PARAMS, comment="z = y + shortcut (unused without a shortcut)"),
    field("min_value", "int32_t", comment="m = min(a, min_value), raw int8"),
    field("sum_s_first", "int32_t", comment="1: sum's input1 is s; 0: it is m"),
    field("res_y_first", "int32_t", comment="1: res's input1 is y; 0: it is the shortcut"),
], doc="Soft threshold + residual: ADD(r, tau) -> MINIMUM(., min_value) ; SUB(r, tau) ReLU ;\n"
       "ADD(sub, min) ; ADD(that, shortcut). Each dk_add_params as for dk_add_s8 with\n"
       "input1 = the first operand of that operator in the model.")



def match(ops, k, users, outputs) -> Step | None:
    """ADD(r, tau) -> MINIMUM(., c) ; SUB(r, tau) ReLU ; ADD(s, m) [; ADD(y, shortcut)]."""
    if k + 3 >= len(ops):
        return None
    add, mn, sub, tot = ops[k:k + 4]
    if (add.opcode, mn.opcode, sub.opcode, tot.opcode) != ("ADD", "MINIMUM", "SUB", "ADD"):
        return None
    r, tau = add.inputs[:2]
    lc = positions_channels(r.shape) if is_act(r) else None
    if lc is None or not is_act(tau) or not per_channel(tau, lc[1]):
        return None
    if tuple(op.outputs[0].shape for op in (add, mn, sub, tot)) != (r.shape,) * 4:
        return None
    same = same_memory(ops)
    if sub.inputs[0].index != r.index or same(sub.inputs[1].index) != same(tau.index):
        return None
    a = add.outputs[0]
    consts = [t for t in mn.inputs if t is not None and t.data is not None]
    if len(consts) != 1 or numel(consts[0].shape) != 1 or a.index not in [t.index for t in mn.inputs]:
        return None
    if {t.index for t in tot.inputs} != {mn.outputs[0].index, sub.outputs[0].index}:
        return None
    for t, user in ((a, k + 1), (mn.outputs[0], k + 3), (sub.outputs[0], k + 3)):
        if not only_used_by(users, t, user, outputs):
            return None
    step = Step("shrink", [k, k + 1, k + 2, k + 3], reads=[r.index, tau.index],
                info={"positions": lc[0], "channels": lc[1], "min": consts[0],
                      "sum_s_first": tot.inputs[0].index == sub.outputs[0].index})
    y = tot.outputs[0]
    if k + 4 < len(ops) and ops[k + 4].opcode == "ADD" and only_used_by(users, y, k + 4, outputs):
        res = ops[k + 4]
        other = [t for t in res.inputs if t.index != y.index]
        if (len(other) == 1 and is_act(other[0]) and tuple(other[0].shape) == tuple(r.shape)
                and tuple(res.outputs[0].shape) == tuple(r.shape)):
            step.ops.append(k + 4)
            step.reads.append(other[0].index)
            step.info["shortcut"] = other[0]
            step.info["res_y_first"] = res.inputs[0].index == y.index
    step.debug = numel(r.shape)
    step.inplace = r.index
    return step



@register_fusion("shrink", match, kernel_name="dk_shrink_s8", kernels=("shrink.c",),
                 tests=("tests/test_kernels_fast.py::test_fused_soft_threshold_equals_the_five_reference_kernels",
                        "tests/test_kernels_fast.py::test_generated_drsn_with_fused_kernels_is_bit_exact_to_tflm"))
def emit(em, st: Step) -> None:
    add, mn, sub, tot = (em.ops[k] for k in st.ops[:4])
    r, tau = add.inputs[:2]
    info = st.info
    em.group_comment(st, "soft threshold" + (" + residual add" if "shortcut" in info else ""))
    p = f"L{st.last}"
    mn_out = mn.outputs[0]
    quant.check_minmax(mn.inputs[0].scale, mn.inputs[0].zero_point, mn.inputs[1].scale,
                       mn.inputs[1].zero_point, mn_out.scale, mn_out.zero_point)
    em.params(SHRINK_PARAMS, f"{p}_p", add=prepare_add(add), sub=prepare_add(sub), sum=prepare_add(tot),
              res=prepare_add(em.ops[st.ops[4]]) if "shortcut" in info else UNUSED,
              min_value=int(np.asarray(info["min"].data).reshape(-1)[0]),
              sum_s_first=int(info["sum_s_first"]), res_y_first=int(info.get("res_y_first", 1)))
    sc = em.ptr(info["shortcut"]) if "shortcut" in info else "NULL"
    L, C = info["positions"], info["channels"]
    last_stage = 4 if "shortcut" in info else 3

    def call(out, stage, fn="dk_shrink_s8"):
        return f"{fn}(&{p}_p, {L}, {C}, {em.ptr(r)}, {em.ptr(tau)}, {sc}, {out}, {stage})"
    em.debug_taps(st, call)
    em.call(call(em.ptr(em.ops[st.last].outputs[0]), last_stage, "dk_shrink_s8_inline"))
