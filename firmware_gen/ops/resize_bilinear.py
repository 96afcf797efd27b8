"""RESIZE_BILINEAR (NHWC int8, constant output size; align_corners, half_pixel_centers).

TFLM's int8 kernel works in fixed point with 10 fractional bits and no float: the scale is
(2^10 * in + out / 2) / out (align_corners: (2^10 * (in - 1) + (out - 1) / 2) / (out - 1),
integer division), the source coordinate of output index i is i * scale (half_pixel_centers:
plus scale / 2 - 2^9), its lower neighbour max(coord / 2^10, 0) and its upper neighbour
min((coord + 2^10 - 1) / 2^10, in - 1), with C's truncating division throughout, and the
fractional weight coord - 2^10 * lower (negative near the top/left edge with
half_pixel_centers, where both neighbours are the same row or column). This module works
the neighbours and weights out once per output row and column (int32 tables); the kernel
sums the four weighted pixels, each weight pair adding up to 2^10, and divides by 2^20
rounding halves away from zero (TFLM's default double rounding). Input and output share
their quantization (TFLM does not requantize).
"""

from __future__ import annotations

from drsn_edge.errors import UserError
from firmware_gen.params import Struct, field
from firmware_gen.ops.base import register
from firmware_gen.ops.resize import geometry

RESIZE_BILINEAR_PARAMS = Struct("dk_resize_bilinear_params", [
    field("batches", "int32_t"),
    field("input_height", "int32_t"),
    field("input_width", "int32_t"),
    field("depth", "int32_t", comment="channels"),
    field("output_height", "int32_t"),
    field("output_width", "int32_t"),
    field("rows", "const int32_t *", comment="per output row: upper input row, lower input row, weight of the lower (of 1024)"),
    field("cols", "const int32_t *", comment="per output column: left input column, right one, weight of the right (of 1024)"),
])


def _cdiv(a: int, b: int) -> int:
    """C's integer division (truncation toward zero) for b > 0."""
    q = abs(a) // b
    return q if a >= 0 else -q


def interpolation(out_size: int, in_size: int, align_corners: bool, half_pixel_centers: bool) -> list[int]:
    """Per output index: (lower input index, upper input index, weight of the upper one in
    1/1024), flattened, as TFLM's integer kernel computes them."""
    if align_corners and out_size > 1:
        scale = _cdiv(1024 * (in_size - 1) + (out_size - 1) // 2, out_size - 1)
    else:
        scale = _cdiv(1024 * in_size + out_size // 2, out_size)
    table = []
    for i in range(out_size):
        v = i * scale + (_cdiv(scale, 2) - 512 if half_pixel_centers else 0)
        lo = max(_cdiv(v, 1024), 0)
        hi = min(_cdiv(v + 1023, 1024), in_size - 1)
        table += [lo, hi, v - 1024 * lo]
    return table


def prepare(k, op) -> dict:
    g = geometry(k, op)
    ac, hp = g["align_corners"], g["half_pixel_centers"]
    if ac and hp:
        raise UserError(f"{g['where']} sets both align_corners and half_pixel_centers, which TFLM refuses")
    return {**g, "row_table": interpolation(g["output_height"], g["input_height"], ac, hp),
            "col_table": interpolation(g["output_width"], g["input_width"], ac, hp)}


@register("RESIZE_BILINEAR", kernels=("resize_bilinear.c",),
          tests=("tests/test_kernels.py::test_resize_bilinear_matches_tflm",
                 "tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models"))
def emit(em, k, op):
    q = prepare(k, op)
    x, y = op.inputs[0], op.outputs[0]
    em.comment(k, op, f"{q['input_height']}x{q['input_width']} -> {q['output_height']}x{q['output_width']}, "
                      f"align_corners {int(q['align_corners'])}, half_pixel_centers {int(q['half_pixel_centers'])}; "
                      f"fixed point, 10 fractional bits (TFLM's integer kernel)")
    rows = em.array("int32_t", f"L{k}_rows", q["row_table"])
    cols = em.array("int32_t", f"L{k}_cols", q["col_table"])
    em.params(RESIZE_BILINEAR_PARAMS, f"L{k}_p", q, rows=rows, cols=cols)
    em.call(f"dk_resize_bilinear_s8(&L{k}_p, {em.ptr(x)}, {em.ptr(y)})")
