"""BATCH_MATMUL (tf.matmul of two activations, Keras MultiHeadAttention's query-key and
score-value products): [..., M, K] x [..., K, N] -> [..., M, N], up to three batch axes
broadcast against each other, adj_x / adj_y reading either operand transposed.

TFLM's int8 arithmetic: every output is the int32 sum over k of (lhs - lhs_zero_point) *
(rhs - rhs_zero_point), scaled by one multiplier, lhs_scale * rhs_scale (a float32 product)
widened to double and divided by the output scale, plus the output zero point, clamped to
int8 (no fused activation). Per-tensor quantization only, as TFLM. The kernel walks both
operands by element steps worked out here, so a transposed operand needs no copy.
"""

from __future__ import annotations

import numpy as np

from drsn_edge.errors import UserError
from firmware_gen import quant
from firmware_gen.params import REQUANT, Struct, field
from firmware_gen.ops.base import layer_name, numel, register

BATCH_MATMUL_PARAMS = Struct("dk_batch_matmul_params", [
    field("batch", "int32_t", 3, comment="output batch extents, outermost first (1 when unused)"),
    field("lhs_batch_step", "int32_t", 3, comment="lhs elements between batches (0: broadcast)"),
    field("rhs_batch_step", "int32_t", 3, comment="rhs elements between batches (0: broadcast)"),
    field("rows", "int32_t", comment="M"),
    field("cols", "int32_t", comment="N"),
    field("depth", "int32_t", comment="K"),
    field("lhs_row_step", "int32_t", comment="lhs elements between rows i"),
    field("lhs_depth_step", "int32_t", comment="lhs elements between depths k"),
    field("rhs_depth_step", "int32_t", comment="rhs elements between depths k"),
    field("rhs_col_step", "int32_t", comment="rhs elements between columns j"),
    field("lhs_offset", "int32_t", comment="-lhs zero point"),
    field("rhs_offset", "int32_t", comment="-rhs zero point"),
    field("output_zero_point", "int32_t"),
    field("output", REQUANT),
])


def prepare(k, op) -> dict:
    a, b = op.inputs[0], op.inputs[1]
    y = op.outputs[0]
    where = f"op {k} BATCH_MATMUL ({layer_name(y)})"
    if any(t.type != "INT8" for t in (a, b, y)):
        raise UserError(f"{where} multiplies {a.type} x {b.type} into {y.type}; the compiled runtime "
                        f"multiplies int8 only")
    if any(len(t.scales) != 1 for t in (a, b, y)):
        raise UserError(f"{where} has per-channel quantization; TFLM's BATCH_MATMUL takes per-tensor only")
    if not (2 <= len(a.shape) <= 5 and 2 <= len(b.shape) <= 5):
        raise UserError(f"{where}: operands of rank {len(a.shape)} and {len(b.shape)} (2 to 5 are taken)")
    adj_x, adj_y = bool(op.options.get("adjX", False)), bool(op.options.get("adjY", False))
    sa = [1] * (5 - len(a.shape)) + [int(d) for d in a.shape]
    sb = [1] * (5 - len(b.shape)) + [int(d) for d in b.shape]
    m, ka = (sa[4], sa[3]) if adj_x else (sa[3], sa[4])
    kb, n = (sb[4], sb[3]) if adj_y else (sb[3], sb[4])
    batch = []
    for d in range(3):
        if sa[d] != sb[d] and 1 not in (sa[d], sb[d]):
            raise UserError(f"{where}: batch axes {list(a.shape)} and {list(b.shape)} do not broadcast")
        batch.append(max(sa[d], sb[d]))
    if ka != kb or numel(y.shape) != numel(batch) * m * n or [int(d) for d in y.shape[-2:]] != [m, n]:
        raise UserError(f"{where}: {list(a.shape)} x {list(b.shape)} (adj_x {adj_x}, adj_y {adj_y}) does not "
                        f"give {list(y.shape)}")

    def batch_steps(s):
        return [0 if s[d] == 1 else numel(s[d + 1:]) for d in range(3)]
    real = float(np.float32(np.float32(a.scale) * np.float32(b.scale))) / float(np.float32(y.scale))
    return {
        "batch": batch, "lhs_batch_step": batch_steps(sa), "rhs_batch_step": batch_steps(sb),
        "rows": m, "cols": n, "depth": ka,
        "lhs_row_step": 1 if adj_x else ka, "lhs_depth_step": m if adj_x else 1,
        "rhs_depth_step": 1 if adj_y else n, "rhs_col_step": kb if adj_y else 1,
        "lhs_offset": -int(a.zero_point), "rhs_offset": -int(b.zero_point),
        "output_zero_point": int(y.zero_point), "output": quant.quantize_multiplier(real),
    }


def macs(op) -> int:
    a = op.inputs[0]
    depth = int(a.shape[-2] if op.options.get("adjX", False) else a.shape[-1])
    return numel(op.outputs[0].shape) * depth


@register("BATCH_MATMUL", kernels=("batch_matmul.c",), macs=macs,
          tests=("tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models",
                 "tests/test_byom.py::test_batch_matmul_arithmetic_is_tflms"))
def emit(em, k, op):
    a, b = op.inputs[0], op.inputs[1]
    y = op.outputs[0]
    q = prepare(k, op)
    em.comment(k, op, f"{q['batch']} batches of [{q['rows']}, {q['depth']}] x [{q['depth']}, {q['cols']}]"
                      f" (adj_x {bool(op.options.get('adjX', False))}, adj_y {bool(op.options.get('adjY', False))})")
    em.params(BATCH_MATMUL_PARAMS, f"L{k}_p", q)
    em.call(f"dk_batch_matmul_s8(&L{k}_p, {em.ptr(a, 'lhs')}, {em.ptr(b, 'rhs')}, {em.ptr(y)})")
