"""TRANSPOSE (up to 4-D, constant permutation)."""

from __future__ import annotations

import numpy as np

from drsn_edge.errors import UserError
from firmware_gen.params import Struct, field
from firmware_gen.ops.base import layer_name, register

TRANSPOSE_PARAMS = Struct("dk_transpose_params", [
    field("input_dims", "int32_t", 4, comment="the input as four dimensions (leading 1s added)"),
    field("perm", "int32_t", 4, comment="output dimension d is input dimension perm[d]"),
])


def prepare(k, op) -> dict:
    x, perm_t, y = op.inputs[0], op.inputs[1], op.outputs[0]
    if perm_t.data is None:
        raise UserError(f"op {k} TRANSPOSE ({layer_name(y)}) has a run-time permutation; use a constant one")
    perm = [int(v) for v in np.asarray(perm_t.data).reshape(-1)]
    dims = [int(d) for d in x.shape]
    # Leading dimensions of size 1 that stay in place can go; then pad to four.
    while len(dims) > 4 and dims[0] == 1 and perm[0] == 0:
        dims, perm = dims[1:], [p - 1 for p in perm[1:]]
    if len(dims) > 4:
        raise UserError(f"op {k} TRANSPOSE ({layer_name(y)}) permutes {len(dims)} dimensions; the "
                        f"compiled runtime permutes up to four")
    lead = 4 - len(dims)
    return {"input_dims": [1] * lead + dims, "perm": list(range(lead)) + [p + lead for p in perm]}


@register("TRANSPOSE", kernels=("transpose.c",),
          tests=("tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models",))
def emit(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    q = prepare(k, op)
    em.comment(k, op, f"permutation {q['perm']} of {q['input_dims']}")
    em.params(TRANSPOSE_PARAMS, f"L{k}_p", q)
    em.call(f"dk_transpose_s8(&L{k}_p, {em.ptr(x)}, {em.ptr(y)})")
