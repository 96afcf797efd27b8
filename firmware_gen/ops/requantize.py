"""QUANTIZE from int8 to int8 (a requantization); the QUANTIZE unit is ops/quantize.py."""

from __future__ import annotations

from drsn_edge.errors import UserError
from firmware_gen import quant
from firmware_gen.params import REQUANT, Struct, field
from firmware_gen.ops.base import layer_name, numel

REQUANTIZE_PARAMS = Struct("dk_requantize_params", [
    field("input_zero_point", "int32_t"),
    field("output_zero_point", "int32_t"),
    field("output", REQUANT),
])


def prepare(op) -> quant.RequantizeParams:
    x, y = op.inputs[0], op.outputs[0]
    if x.type != "INT8" or y.type != "INT8":
        raise UserError(f"QUANTIZE from {x.type} to {y.type} (layer {layer_name(y)}): only int8->int8 "
                        f"requantization runs in the compiled runtime; re-run make quantize")
    return quant.prepare_requantize(x.scale, x.zero_point, y.scale, y.zero_point)


def emit(em, k, op):
    """The int8 -> int8 case of the QUANTIZE unit (registered in ops/quantize.py, which
    also takes the float32 input)."""
    x, y = op.inputs[0], op.outputs[0]
    q = prepare(op)
    em.comment(k, op)
    em.params(REQUANTIZE_PARAMS, f"L{k}_p", q)
    em.call(f"dk_requantize_s8(&L{k}_p, {em.ptr(x)}, {em.ptr(y)}, {numel(x.shape)})")
