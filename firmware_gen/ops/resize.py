"""RESIZE_NEAREST_NEIGHBOR (NHWC, constant output size; align_corners, half_pixel_centers).

Which input row and column each output row and column copies is computed here, once, with
TFLM's float32 arithmetic (scale = in / out, or (in - 1) / (out - 1) with align_corners;
index = floor((i + offset) * scale), or round half away from zero with align_corners;
offset 0.5 with half_pixel_centers; clamped to the input). The kernel only gathers.
"""

from __future__ import annotations

import numpy as np

from drsn_edge.errors import UserError
from firmware_gen.params import Struct, field
from firmware_gen.ops.base import layer_name, register, same_quant

RESIZE_PARAMS = Struct("dk_resize_nearest_params", [
    field("batches", "int32_t"),
    field("input_height", "int32_t"),
    field("input_width", "int32_t"),
    field("depth", "int32_t", comment="channels: bytes copied per pixel"),
    field("output_height", "int32_t"),
    field("output_width", "int32_t"),
    field("rows", "const int32_t *", comment="output_height input rows, one per output row"),
    field("cols", "const int32_t *", comment="output_width input columns, one per output column"),
])


def nearest(out_size: int, in_size: int, align_corners: bool, half_pixel_centers: bool) -> list[int]:
    """The input index of each output index, as TFLM's reference computes it (float32)."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    offset = f32(0.5) if half_pixel_centers else f32(0.0)
    out = []
    for i in range(out_size):
        v = f32(f32(i) + offset) * scale          # float32 product, rounded once
        if align_corners:
            j = int(np.sign(v) * np.floor(np.abs(v) + 0.5))    # round half away from zero
        else:
            j = int(np.floor(v))
        j = min(j, in_size - 1)
        if half_pixel_centers:
            j = max(0, j)
        out.append(j)
    return out


def geometry(k, op) -> dict:
    """What both RESIZE ops check and take: a constant output size of an NHWC tensor whose
    quantization it keeps, and the align_corners / half_pixel_centers options."""
    x, size, y = op.inputs[0], op.inputs[1], op.outputs[0]
    where = f"op {k} {op.opcode} ({layer_name(y)})"
    same_quant(k, op, [x])
    if size.data is None:
        raise UserError(f"{where} has a run-time output size; use a constant one")
    if len(x.shape) != 4:
        raise UserError(f"{where} resizes a rank-{len(x.shape)} tensor; the compiled runtime "
                        f"resizes NHWC (rank 4)")
    out_h, out_w = (int(v) for v in np.asarray(size.data).reshape(-1)[:2])
    b, in_h, in_w, c = (int(d) for d in x.shape)
    return {"where": where, "batches": b, "input_height": in_h, "input_width": in_w, "depth": c,
            "output_height": out_h, "output_width": out_w,
            "align_corners": bool(op.options.get("alignCorners", False)),
            "half_pixel_centers": bool(op.options.get("halfPixelCenters", False))}


def prepare(k, op) -> dict:
    g = geometry(k, op)
    ac, hp = g["align_corners"], g["half_pixel_centers"]
    return {**g, "row_index": nearest(g["output_height"], g["input_height"], ac, hp),
            "col_index": nearest(g["output_width"], g["input_width"], ac, hp)}


@register("RESIZE_NEAREST_NEIGHBOR", kernels=("resize_nearest.c",),
          tests=("tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models",
                 "tests/test_kernels.py::test_resize_nearest_neighbor_matches_tflm"))
def emit(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    q = prepare(k, op)
    em.comment(k, op, f"{q['input_height']}x{q['input_width']} -> {q['output_height']}x{q['output_width']}, "
                      f"align_corners {int(q['align_corners'])}, half_pixel_centers {int(q['half_pixel_centers'])}")
    rows = em.array("int32_t", f"L{k}_rows", q["row_index"])
    cols = em.array("int32_t", f"L{k}_cols", q["col_index"])
    em.params(RESIZE_PARAMS, f"L{k}_p", q, rows=rows, cols=cols)
    em.call(f"dk_resize_nearest_s8(&L{k}_p, {em.ptr(x)}, {em.ptr(y)})")
