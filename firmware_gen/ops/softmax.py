"""SOFTMAX over the last axis (output at scale 1/256, zero point -128)."""

from __future__ import annotations

from drsn_edge.errors import UserError
from firmware_gen import quant
from firmware_gen.params import Struct, field
from firmware_gen.ops.base import layer_name, numel, register

SOFTMAX_PARAMS = Struct("dk_softmax_params", [
    field("input_multiplier", "int32_t"),
    field("input_left_shift", "int32_t"),
    field("diff_min", "int32_t"),
])


def prepare(op) -> quant.SoftmaxParams:
    x, y = op.inputs[0], op.outputs[0]
    beta = op.options.get("beta", 1.0)
    if not quant.softmax_input_real(x.scale, beta) > 1.0:
        # TFLM's prepare needs this product above one (QuantizeMultiplierGreaterThanOne) and
        # aborts otherwise: the logits span less than about 2^-18, a model answering alike
        # whatever its input (typically untrained weights).
        raise UserError(f"op {op.index} SOFTMAX ({layer_name(y)}): its input scale {float(x.scale):.3g} "
                        f"(beta {beta}) is too small for TFLM's int8 softmax, which stops on it too; the "
                        f"logits before it barely vary (train the model, or calibrate with representative data)")
    return quant.prepare_softmax(x.scale, beta, y.scale, y.zero_point)


@register("SOFTMAX", kernels=("softmax.c", "fixedpoint.c"),
          tests=("tests/test_kernels.py::test_softmax_matches_tflm",))
def emit(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    q = prepare(op)
    depth = x.shape[-1]
    em.comment(k, op, "output fixed at scale 1/256, zero point -128")
    em.params(SOFTMAX_PARAMS, f"L{k}_p", q)
    em.call(f"dk_softmax_s8(&L{k}_p, {numel(x.shape) // depth}, {depth}, {em.ptr(x)}, {em.ptr(y)})")
