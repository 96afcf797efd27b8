"""MIRROR_PAD (tf.pad with mode "REFLECT" or "SYMMETRIC"), constant paddings.

TFLM maps each output coordinate, axis by axis, to an input coordinate: inside the input it
is the coordinate less the left padding; in the left padding it mirrors about the first
element (REFLECT leaves that element out, SYMMETRIC repeats it), in the right padding about
the last; the bytes are copied without requantizing. Each output axis's input offsets are
worked out here with those rules, so the copy is GATHER's index map (ops/gather.py).
"""

from __future__ import annotations

import numpy as np

from drsn_edge.errors import UserError
from firmware_gen.ops.base import layer_name, numel, register
from firmware_gen.ops.gather import emit_index_map

MODES = {0: "REFLECT", 1: "SYMMETRIC"}


def source(o: int, left: int, size: int, offset: int) -> int:
    """The input coordinate of output coordinate o along one axis (offset 1 for REFLECT,
    0 for SYMMETRIC)."""
    if o < left:
        first = left + offset - 1
        return first - min(o, first - offset)
    o -= left
    if o >= size:
        last = size - (1 + offset)
        return last - min(o - size, last)
    return o


def prepare(k, op) -> tuple[list[int], list[list[int]]]:
    x, pads_t = op.inputs[0], op.inputs[1]
    y = op.outputs[0]
    where = f"op {k} MIRROR_PAD ({layer_name(y)})"
    if pads_t.data is None:
        raise UserError(f"{where} has run-time paddings; the compiled runtime pads by constant ones")
    if x.type != "INT8" or y.type != "INT8":
        raise UserError(f"{where} pads {x.type} into {y.type}; the compiled runtime pads int8 only")
    mode = int(op.options.get("mode", 0))
    if mode not in MODES:
        raise UserError(f"{where}: mode {mode} (REFLECT and SYMMETRIC are taken)")
    offset = 1 if MODES[mode] == "REFLECT" else 0
    shape = [int(d) for d in x.shape]
    pads = np.asarray(pads_t.data).reshape(-1, 2).astype(np.int64).tolist()
    if len(pads) != len(shape):
        raise UserError(f"{where}: {len(pads)} paddings for a rank-{len(shape)} input")
    dims, tables = [], []
    for d, (size, (left, right)) in enumerate(zip(shape, pads)):
        limit = size - offset
        if left < 0 or right < 0 or left > limit or right > limit:
            raise UserError(f"{where}: paddings {left}, {right} of axis {d} (size {size}) exceed what "
                            f"{MODES[mode]} mirrors ({limit})")
        stride = numel(shape[d + 1:])
        dims.append(size + left + right)
        tables.append([source(o, left, size, offset) * stride for o in range(size + left + right)])
    if dims != [int(v) for v in y.shape]:
        raise UserError(f"{where}: padding {shape} by {pads} does not give {list(y.shape)}")
    return dims, tables


@register("MIRROR_PAD", kernels=("gather.c",), kernel_name="dk_index_map_s8",
          tests=("tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models",
                 "tests/test_kernels.py::test_gather_and_mirror_pad_match_tflm"))
def emit(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    dims, tables = prepare(k, op)
    pads = np.asarray(op.inputs[1].data).reshape(-1, 2).tolist()
    em.comment(k, op, f"{MODES[int(op.options.get('mode', 0))]} paddings {pads}, copied without requantizing")
    emit_index_map(em, k, x, y, dims, tables)
