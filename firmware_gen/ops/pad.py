"""PAD and PADV2 (up to 4-D, constant paddings; input and output share quantization)."""

from __future__ import annotations

import numpy as np

from drsn_edge.errors import UserError
from firmware_gen.params import Struct, field
from firmware_gen.ops.base import layer_name, register, same_quant

PAD_PARAMS = Struct("dk_pad_params", [
    field("input_dims", "int32_t", 4, comment="the input as four dimensions (leading 1s added)"),
    field("before", "int32_t", 4, comment="elements of padding before, per dimension"),
    field("after", "int32_t", 4, comment="and after"),
    field("value", "int32_t", comment="the padding value (output zero point or PADV2's)"),
])


def prepare(k, op) -> dict:
    x, pads, y = op.inputs[0], op.inputs[1], op.outputs[0]
    same_quant(k, op, [x])
    if pads.data is None:
        raise UserError(f"op {k} {op.opcode} ({layer_name(y)}) has run-time paddings; use constant ones")
    pads = np.asarray(pads.data, np.int64).reshape(-1, 2)
    dims = [int(d) for d in x.shape]
    while len(dims) > 4 and dims[0] == 1 and pads[0].sum() == 0:
        dims, pads = dims[1:], pads[1:]
    if len(dims) > 4:
        raise UserError(f"op {k} {op.opcode} ({layer_name(y)}) pads a rank-{len(dims)} tensor; "
                        f"the compiled runtime pads up to four dimensions")
    lead = 4 - len(dims)
    pads = np.concatenate([np.zeros((lead, 2), np.int64), pads])
    value = y.zero_point
    if len(op.inputs) > 2 and op.inputs[2] is not None:
        if op.inputs[2].data is None:
            raise UserError(f"op {k} {op.opcode} ({layer_name(y)}) has a run-time padding value")
        value = int(np.asarray(op.inputs[2].data).reshape(-1)[0])
    return {"input_dims": [1] * lead + dims, "before": pads[:, 0].tolist(), "after": pads[:, 1].tolist(),
            "value": value}


@register("PAD", "PADV2", kernels=("pad.c",),
          tests=("tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models",))
def emit(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    q = prepare(k, op)
    em.comment(k, op, f"paddings {[[b, a] for b, a in zip(q['before'], q['after'])]} value {q['value']}")
    em.params(PAD_PARAMS, f"L{k}_p", q)
    em.call(f"dk_pad_s8(&L{k}_p, {em.ptr(x)}, {em.ptr(y)})")
