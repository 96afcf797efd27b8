"""QUANTIZE between 8-bit integer types (the QUANTIZE unit is ops/quantize.py): int8 -> int8
(a requantization), and uint8 <-> int8 at the model's interface.

A model converted with inference_input_type = tf.uint8 starts with a QUANTIZE uint8 -> int8,
one with inference_output_type = tf.uint8 ends with a QUANTIZE int8 -> uint8. TFLM computes
all three alike: the multiplier of input_scale / output_scale (in double, as for int8), the
input zero point subtracted, the output's added, clamped to the output type's range. The
converter gives both sides the same scale and zero points 128 apart, which makes the byte's
top bit flip; other quantizations go through the same arithmetic.
"""

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

# (input type, output type) -> the kernel
KERNELS = {("INT8", "INT8"): "dk_requantize_s8", ("UINT8", "INT8"): "dk_requantize_u8_s8",
           ("INT8", "UINT8"): "dk_requantize_s8_u8"}


def prepare(op) -> quant.RequantizeParams:
    x, y = op.inputs[0], op.outputs[0]
    if (x.type, y.type) not in KERNELS:
        raise UserError(f"QUANTIZE from {x.type} to {y.type} (layer {layer_name(y)}): only int8->int8, "
                        f"uint8->int8 and int8->uint8 run in the compiled runtime; re-run make quantize")
    if len(x.scales) != 1 or len(y.scales) != 1:
        raise UserError(f"QUANTIZE from {x.type} to {y.type} (layer {layer_name(y)}) is quantized per "
                        f"channel; the compiled runtime requantizes per-tensor 8-bit values only")
    return quant.prepare_requantize(x.scale, x.zero_point, y.scale, y.zero_point)


def emit(em, k, op):
    """The 8-bit integer cases of the QUANTIZE unit (registered in ops/quantize.py, which
    also takes the float32 input). uint8 only at the model's interface: its input, read by
    this op, or its output, written by it."""
    x, y = op.inputs[0], op.outputs[0]
    q = prepare(op)
    if x.type == "UINT8" and x.index != em.input.index:
        raise UserError(f"op {k} QUANTIZE ({layer_name(y)}) from uint8 does not read the model's input; "
                        f"the compiled runtime takes uint8 only as the model's input or output")
    if y.type == "UINT8" and y.index not in em.output_indices:
        raise UserError(f"op {k} QUANTIZE ({layer_name(y)}) to uint8 does not write the model's output; "
                        f"the compiled runtime takes uint8 only as the model's input or output")
    kernel = KERNELS[(x.type, y.type)]
    extra = ""
    if kernel != "dk_requantize_s8":
        em.kernel_name(kernel)
        extra = (f"{x.type.lower()} -> {y.type.lower()}, clamped to the {y.type.lower()} range"
                 + (" (same scale, zero points 128 apart: the top bit flips)"
                    if q.output.multiplier == 1 << 30 and q.output.shift == 1
                    and abs(q.input_zero_point - q.output_zero_point) == 128 else ""))
    em.comment(k, op, extra)
    em.params(REQUANTIZE_PARAMS, f"L{k}_p", q)
    em.call(f"{kernel}(&L{k}_p, {em.ptr(x)}, {em.ptr(y)}, {numel(x.shape)})")
