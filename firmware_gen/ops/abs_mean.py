"""ABS then MEAN over the positions of [1, L, C], fused into one pass: dk_abs_mean_s8."""

from __future__ import annotations

import numpy as np

from firmware_gen import quant
from firmware_gen.ops.base import Step, numel, only_used_by, positions_channels, register_fusion
from firmware_gen.ops.mean import MEAN_PARAMS


def match(ops, k, users, outputs) -> Step | None:
    """ABS(x) -> MEAN over the positions of [1, L, C]."""
    if k + 1 >= len(ops) or (ops[k].opcode, ops[k + 1].opcode) != ("ABS", "MEAN"):
        return None
    ab, mean = ops[k], ops[k + 1]
    x, a = ab.inputs[0], ab.outputs[0]
    lc = positions_channels(x.shape)
    if lc is None or mean.inputs[0].index != a.index or not only_used_by(users, a, k + 1, outputs):
        return None
    axes = [int(v) for v in np.atleast_1d(mean.inputs[1].data)]
    try:
        outer, reduce, inner = quant.mean_plan(a.shape, axes)
    except quant.QuantError:
        return None
    if (outer, reduce, inner) != (1, lc[0], lc[1]):
        return None
    return Step("absmean", [k, k + 1], reads=[x.index], debug=numel(x.shape), debug_with_output=True,
                info={"positions": lc[0], "channels": lc[1]})



@register_fusion("absmean", match, kernel_name="dk_abs_mean_s8", kernels=("abs_mean.c",),
                 tests=("tests/test_kernels_fast.py::test_fused_abs_mean_equals_abs_then_mean",
                        "tests/test_kernels_fast.py::test_generated_drsn_with_fused_kernels_is_bit_exact_to_tflm"))
def emit(em, st: Step) -> None:
    ab, mean = (em.ops[k] for k in st.ops)
    x, a, y = ab.inputs[0], ab.outputs[0], mean.outputs[0]
    info = st.info
    em.group_comment(st, "|x| and its mean over positions in one pass")
    p = f"L{st.last}"
    qa = quant.prepare_abs(x.scale, x.zero_point, a.scale, a.zero_point)
    qm = quant.prepare_mean(a.scale, a.zero_point, y.scale, y.zero_point, info["positions"])
    em.array("int8_t", f"{p}_abs", quant.abs_table(qa))
    em.params(MEAN_PARAMS, f"{p}_mean", qm)
    L, C = info["positions"], info["channels"]
    call = f"dk_abs_mean_s8({p}_abs, &{p}_mean, {L}, {C}, {em.ptr(x)}, %s, {em.ptr(y)})"
    em.body.append("        if (emit) {")
    em.body.append(f"            {call % em.debug_ptr()};")
    em.body.append(f"            emit({st.ops[0]}, {em.debug_ptr()}, layers[{st.ops[0]}].size, ctx);")
    em.body.append("        } else {")
    em.body.append(f"            {call % 'NULL'};")
    em.body.append("        }")
