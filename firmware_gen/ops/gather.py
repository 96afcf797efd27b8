"""GATHER with constant indices (tf.gather on int8 data: picking or reordering rows,
channels or time steps), batch_dims 0.

TFLM copies, for every index of the axis's outer positions, the input's slice at that
index, without requantizing. Seen from the output, each output axis reads the input at an
offset that depends on its own coordinate only (the axes before `axis`, the indices, the
axes after it), so the plan is an index map: up to four output extents and, per output axis,
the input offset of each coordinate. The kernel (gather.c) sums one offset per axis for each
output element. MIRROR_PAD (ops/mirror_pad.py) is a copy of the same kind.
"""

from __future__ import annotations

import numpy as np

from drsn_edge.errors import UserError
from firmware_gen.params import Struct, field
from firmware_gen.ops.base import checked_axis, layer_name, numel, register

INDEX_MAP_PARAMS = Struct("dk_index_map_params", [
    field("dims", "int32_t", 4, comment="output extents, outermost first (1 when unused)"),
    field("offsets", "const int32_t *", comment="per output axis in turn, dims[d] input offsets"),
], doc="A copy in which each output axis reads the input at an offset of its own\n"
       "coordinate: output (i0, i1, i2, i3) = input[offsets0[i0] + offsets1[i1] + ...].")


def merged(dims: list[int], tables: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Drop axes of extent 1 (their offset joins a neighbour) until at most four are left;
    an adjacent pair merges into one axis of all its offset sums."""
    base = sum(t[0] for d, t in zip(dims, tables) if d == 1)
    dims2 = [d for d in dims if d != 1]
    tabs = [t for d, t in zip(dims, tables) if d != 1]
    while len(dims2) > 4:
        i = min(range(len(dims2) - 1), key=lambda j: dims2[j] * dims2[j + 1])
        tabs[i:i + 2] = [[a + b for a in tabs[i] for b in tabs[i + 1]]]
        dims2[i:i + 2] = [dims2[i] * dims2[i + 1]]
    if not dims2:
        dims2, tabs = [1], [[0]]
    tabs[0] = [v + base for v in tabs[0]]
    pad = 4 - len(dims2)
    return [1] * pad + dims2, [[0]] * pad + tabs


def emit_index_map(em, k, x, y, dims: list[int], tables: list[list[int]]) -> None:
    dims, tables = merged(dims, tables)
    flat = [v for t in tables for v in t]
    if numel(dims) != numel(y.shape) or not (0 <= sum(min(t) for t in tables)
                                             and sum(max(t) for t in tables) < numel(x.shape)):
        raise UserError(f"op {k} {layer_name(y)}: the copy plan does not fit the tensors; the compiled "
                        f"runtime cannot take it")
    em.array("int32_t", f"L{k}_offsets", flat)
    em.params(INDEX_MAP_PARAMS, f"L{k}_p", {"dims": dims, "offsets": f"L{k}_offsets"})
    em.call(f"dk_index_map_s8(&L{k}_p, {em.ptr(x)}, {em.ptr(y)})")


def prepare(k, op) -> tuple[list[int], list[list[int]]]:
    """The index map: (output extents, input offsets per output axis)."""
    x, idx = op.inputs[0], op.inputs[1]
    y = op.outputs[0]
    where = f"op {k} GATHER ({layer_name(y)})"
    if idx.data is None:
        raise UserError(f"{where} has run-time indices; the compiled runtime gathers with constant ones")
    if int(op.options.get("batchDims", 0)):
        raise UserError(f"{where} has batch_dims {op.options.get('batchDims')}; the compiled runtime "
                        f"gathers with batch_dims 0")
    if x.type != "INT8" or y.type != "INT8":
        raise UserError(f"{where} gathers {x.type} into {y.type}; the compiled runtime gathers int8 only")
    rank = len(x.shape)
    axis = checked_axis(where, int(op.options.get("axis", 0)), rank, "input")
    shape = [int(d) for d in x.shape]
    indices = np.asarray(idx.data).reshape(-1).astype(np.int64)
    if len(indices) == 0 or indices.min() < 0 or indices.max() >= shape[axis]:
        raise UserError(f"{where}: indices {indices.tolist()} outside axis {axis} of size {shape[axis]} "
                        f"(TFLM takes 0 .. size - 1)")
    if numel(y.shape) != numel(shape[:axis]) * len(indices) * numel(shape[axis + 1:]):
        raise UserError(f"{where}: output {list(y.shape)} is not input {shape} gathered at "
                        f"{len(indices)} indices")
    stride = [numel(shape[d + 1:]) for d in range(rank)]
    dims, tables = [], []
    for d in range(rank):
        if d == axis:
            dims.append(len(indices))
            tables.append([int(i) * stride[d] for i in indices])
        else:
            dims.append(shape[d])
            tables.append([i * stride[d] for i in range(shape[d])])
    return dims, tables


@register("GATHER", kernels=("gather.c",), kernel_name="dk_index_map_s8",
          tests=("tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models",
                 "tests/test_kernels.py::test_gather_and_mirror_pad_match_tflm"))
def emit(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    dims, tables = prepare(k, op)
    axis = int(op.options.get("axis", 0)) % len(x.shape)
    em.comment(k, op, f"axis {axis} at indices {np.asarray(op.inputs[1].data).reshape(-1).tolist()[:16]}"
                      f"{' ...' if numel(op.inputs[1].shape) > 16 else ''}, copied without requantizing")
    emit_index_map(em, k, x, y, dims, tables)
