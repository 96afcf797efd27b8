"""STRIDED_SLICE with constant begin, end and strides (a copy of a strided window).

Which elements are copied is worked out here with TFLM's rules per axis (a negative index
counts from the end; begin_mask / end_mask take the whole extent in the stride's direction;
the range is clamped to the axis, like Python's slice; shrink_axis_mask keeps the single
index `begin`). The result is a base offset and up to four (count, input step) loops for the
kernel. ellipsis_mask, new_axis_mask and `offset` are refused: the converter folds them away
in the models we have seen, and a refused op is one clear line.
"""

from __future__ import annotations

import numpy as np

from drsn_edge.errors import UserError
from firmware_gen.params import Struct, field
from firmware_gen.ops.base import layer_name, numel, register

STRIDED_SLICE_PARAMS = Struct("dk_strided_slice_params", [
    field("start", "int32_t", comment="input element of the first output element"),
    field("count", "int32_t", 4, comment="output elements along each of four loops, outermost first"),
    field("step", "int32_t", 4, comment="input elements between neighbours along each loop (may be negative)"),
])


def plan(shape, begin, end, strides, begin_mask: int = 0, end_mask: int = 0,
         shrink_mask: int = 0) -> dict | str:
    """The copy as {start, count[4], step[4]}, or a string saying why it cannot be one."""
    dims = [int(d) for d in shape]
    in_strides = [numel(dims[d + 1:]) for d in range(len(dims))]
    start, loops = 0, []
    for d, dim in enumerate(dims):
        s = int(strides[d])
        if s == 0:
            return f"stride 0 on axis {d}"
        if shrink_mask >> d & 1:
            b = int(begin[d]) + (dim if int(begin[d]) < 0 else 0)
            if not 0 <= b < dim:
                return f"index {int(begin[d])} outside axis {d} of size {dim}"
            start += b * in_strides[d]
            continue
        r = range(*slice(None if begin_mask >> d & 1 else int(begin[d]),
                         None if end_mask >> d & 1 else int(end[d]), s).indices(dim))
        if len(r) == 0:
            return f"an empty slice of axis {d}"
        start += r.start * in_strides[d]
        if len(r) > 1:
            loops.append([len(r), s * in_strides[d]])
    # Neighbouring loops that walk one contiguous run merge (an inner whole-row copy).
    merged: list[list[int]] = []
    for count, step in loops:
        if merged and merged[-1][1] == count * step:
            merged[-1] = [merged[-1][0] * count, step]
        else:
            merged.append([count, step])
    if len(merged) > 4:
        return f"{len(merged)} strided axes (the compiled runtime walks up to four)"
    merged = [[1, 0]] * (4 - len(merged)) + merged
    return {"start": start, "count": [c for c, _ in merged], "step": [s for _, s in merged]}


def prepare(k, op) -> dict:
    x, y = op.inputs[0], op.outputs[0]
    where = f"op {k} STRIDED_SLICE ({layer_name(y)})"
    if any(t.data is None for t in op.inputs[1:4]):
        raise UserError(f"{where} has run-time begin/end/strides; the compiled runtime slices with "
                        f"constant ones")
    o = op.options
    for opt in ("ellipsisMask", "newAxisMask"):
        if int(o.get(opt, 0)):
            raise UserError(f"{where} uses {opt}; the compiled runtime takes begin_mask, end_mask and "
                            f"shrink_axis_mask only")
    if o.get("offset"):
        raise UserError(f"{where} uses offset = true; the compiled runtime takes plain begin/end")
    begin, end, strides = (np.asarray(t.data).reshape(-1).tolist() for t in op.inputs[1:4])
    if not len(begin) == len(end) == len(strides) == len(x.shape):
        raise UserError(f"{where} slices {len(begin)} of {len(x.shape)} axes; the compiled runtime "
                        f"takes one begin/end/stride per axis")
    return checked_plan(where, x, y, begin, end, strides, int(o.get("beginMask", 0)),
                        int(o.get("endMask", 0)), int(o.get("shrinkAxisMask", 0)))


def checked_plan(where: str, x, y, begin, end, strides, *masks) -> dict:
    """plan(), refused in one line when the compiled runtime cannot take the slice or it does
    not fill the output (STRIDED_SLICE and SLICE alike)."""
    p = plan(x.shape, begin, end, strides, *masks)
    if isinstance(p, str):
        raise UserError(f"{where}: {p}; the compiled runtime cannot take it")
    if int(np.prod(p["count"])) != numel(y.shape):
        raise UserError(f"{where}: the slice has {int(np.prod(p['count']))} elements but the output "
                        f"{list(y.shape)} has {numel(y.shape)}")
    return p


@register("STRIDED_SLICE", kernels=("strided_slice.c",),
          tests=("tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models",
                 "tests/test_kernels.py::test_strided_slice_matches_tflm"))
def emit(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    q = prepare(k, op)
    begin, end, strides = (np.asarray(t.data).reshape(-1).tolist() for t in op.inputs[1:4])
    em.comment(k, op, f"begin {begin} end {end} strides {strides} masks begin {op.options.get('beginMask', 0)} "
                      f"end {op.options.get('endMask', 0)} shrink {op.options.get('shrinkAxisMask', 0)}; "
                      f"copy from element {q['start']}, loops {q['count']} steps {q['step']}")
    em.params(STRIDED_SLICE_PARAMS, f"L{k}_p", q)
    em.call(f"dk_strided_slice_s8(&L{k}_p, {em.ptr(x)}, {em.ptr(y)})")
