"""L2_NORMALIZATION over the last axis (tf.math.l2_normalize(x, axis=-1): embeddings of
face, speaker or few-shot keyword models).

TFLM's int8 kernel: per row, the inverse square root of the sum of squares of the input
less its zero point (a fixed-point Newton-Raphson iteration, in the kernel: the sum depends
on the data), times each input less its zero point, in units of 1/128 clamped to int8. It
reads only the input's zero point; the output's quantization (the converter's 1/128, 0) is
not used, so neither is it here. No fused activation (TFLM refuses one).
"""

from __future__ import annotations

from drsn_edge.errors import UserError
from firmware_gen.ops.base import layer_name, numel, register


def prepare(k, op) -> tuple[int, int, int]:
    """(input zero point, rows, depth)."""
    x, y = op.inputs[0], op.outputs[0]
    where = f"op {k} L2_NORMALIZATION ({layer_name(y)})"
    if x.type != "INT8" or y.type != "INT8" or len(x.scales) != 1:
        raise UserError(f"{where} takes {x.type} into {y.type}; the compiled runtime takes per-tensor int8 only")
    if op.options.get("fusedActivationFunction", 0):
        raise UserError(f"{where} has a fused activation; TFLM runs L2_NORMALIZATION without one")
    if not 1 <= len(x.shape) <= 4 or list(x.shape) != list(y.shape):
        raise UserError(f"{where}: input {list(x.shape)}, output {list(y.shape)} (same shape, rank up to 4)")
    depth = int(x.shape[-1])
    return int(x.zero_point), numel(x.shape) // depth, depth


@register("L2_NORMALIZATION", kernels=("l2_normalization.c",),
          tests=("tests/test_kernels.py::test_l2_normalization_matches_tflm",
                 "tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models"))
def emit(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    zp, outer, depth = prepare(k, op)
    em.comment(k, op, f"{outer} rows of {depth}, output in units of 1/128 (TFLM's)")
    em.call(f"dk_l2_normalization_s8({zp}, {outer}, {depth}, {em.ptr(x)}, {em.ptr(y)})")
