"""SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND (tf.space_to_batch_nd / tf.batch_to_space_nd,
and the converter's wrapping of a dilated convolution): NHWC or NHC (rank 3: one spatial
axis), constant block shape and paddings / crops, bytes copied without requantizing (as
TFLM).

SPACE_TO_BATCH_ND: output batch (dy * bw + dx) * B + b, position (h, w) is input batch b at
(h * bh + dy - pad_top, w * bw + dx - pad_left), or padding where that falls outside. Which
output positions are padding depends on the batch and the position together, so it has
its own kernel (space_to_batch.c).

The padding byte: TFLM's kernel pads with a field of its parameters that its Prepare never
sets (TFLite's sets it to the output zero point), so it writes whatever byte its arena
holds there: 0 in a zeroed arena, as a board's static arena is at boot and a fresh host
arena is. The compiled runtime writes 0, what TFLM gives on the board, which is not the
zero point's real 0.0 unless the zero point is 0.

BATCH_TO_SPACE_ND is the inverse, with crops instead of padding: output (b, h, w, c) reads
input batch (((h + crop_top) % bh) * bw + (w + crop_left) % bw) * B + b at ((h + crop_top)
/ bh, (w + crop_left) / bw, c). The input offset is a sum of one term of b, one of h, one
of w and one of c, so the copy is GATHER's index map (ops/gather.py).
"""

from __future__ import annotations

import numpy as np

from drsn_edge.errors import UserError
from firmware_gen.params import Struct, field
from firmware_gen.ops.base import layer_name, register
from firmware_gen.ops.gather import emit_index_map

# The byte TFLM's SPACE_TO_BATCH_ND pads with (see above).
TFLM_PAD_BYTE = 0

SPACE_TO_BATCH_PARAMS = Struct("dk_space_to_batch_params", [
    field("input_dims", "int32_t", 4, comment="batch, height, width, channels (width 1 for rank 3)"),
    field("output_dims", "int32_t", 4, comment="batch, height, width, channels"),
    field("block", "int32_t", 2, comment="block height, width"),
    field("pad_before", "int32_t", 2, comment="padding rows on top, columns on the left"),
    field("pad_value", "int32_t", comment="the byte written where the output is padding"),
], doc="SPACE_TO_BATCH_ND: output batch (dy * block[1] + dx) * B + b at (h, w) is\n"
       "input batch b at (h * block[0] + dy - pad_before[0], w * block[1] + dx - pad_before[1]).")


def _nhwc(shape) -> list[int]:
    """NHC -> NH1C, as TFLM extends rank 3."""
    dims = [int(d) for d in shape]
    return dims if len(dims) == 4 else [dims[0], dims[1], 1, dims[2]]


def geometry(k, op) -> dict:
    """The checked shapes: input / output as NHWC, block (bh, bw) and the amounts before and
    after (paddings or crops) per spatial axis, (top, bottom), (left, right)."""
    y = op.outputs[0]
    name = op.opcode
    where = f"op {k} {name} ({layer_name(y)})"
    if len(op.inputs) != 3 or any(t is None for t in op.inputs):
        raise UserError(f"{where} has {len(op.inputs)} inputs; TFLM takes three (data, block shape, "
                        f"{'paddings' if name == 'SPACE_TO_BATCH_ND' else 'crops'})")
    x, block, amounts = op.inputs
    if x.type != "INT8" or y.type != "INT8":
        raise UserError(f"{where} moves {x.type} into {y.type}; the compiled runtime takes int8 only")
    if block.data is None or amounts.data is None:
        raise UserError(f"{where} has a run-time block shape or {'paddings' if name == 'SPACE_TO_BATCH_ND' else 'crops'}; "
                        f"the compiled runtime takes constant ones")
    rank = len(x.shape)
    if rank not in (3, 4) or len(y.shape) != rank:
        raise UserError(f"{where}: input {list(x.shape)}; TFLM takes rank 3 (NHC) or 4 (NHWC)")
    spatial = rank - 2
    b = np.asarray(block.data, np.int64).reshape(-1)
    a = np.asarray(amounts.data, np.int64).reshape(-1)
    if b.size != spatial or a.size != 2 * spatial or (b < 1).any() or (a < 0).any():
        raise UserError(f"{where}: block shape {b.tolist()} and {a.tolist()} do not fit a rank-{rank} input")
    a = a.reshape(-1, 2)
    bh, bw = int(b[0]), (int(b[1]) if spatial == 2 else 1)
    (top, bottom), (left, right) = a[0].tolist(), (a[1].tolist() if spatial == 2 else [0, 0])
    xs, ys = _nhwc(x.shape), _nhwc(y.shape)
    if name == "SPACE_TO_BATCH_ND":
        ok = ((top + xs[1] + bottom) % bh == 0 and (left + xs[2] + right) % bw == 0 and ys == [
            xs[0] * bh * bw, (top + xs[1] + bottom) // bh, (left + xs[2] + right) // bw, xs[3]])
    else:
        ok = (xs[0] % (bh * bw) == 0 and ys == [
            xs[0] // (bh * bw), xs[1] * bh - top - bottom, xs[2] * bw - left - right, xs[3]])
    if not ok:
        raise UserError(f"{where}: block shape {b.tolist()} with {a.tolist()} does not take "
                        f"{list(x.shape)} to {list(y.shape)}")
    return {"input": xs, "output": ys, "block": [bh, bw], "before": [top, left], "after": [bottom, right]}


def space_to_batch(k, op) -> dict:
    g = geometry(k, op)
    return {"input_dims": g["input"], "output_dims": g["output"], "block": g["block"],
            "pad_before": g["before"], "pad_value": TFLM_PAD_BYTE}


def batch_to_space(k, op) -> tuple[list[int], list[list[int]]]:
    """The index map of BATCH_TO_SPACE_ND: (output extents, input offsets per output axis)."""
    g = geometry(k, op)
    _, ih, iw, c = g["input"]
    ob, oh, ow, _ = g["output"]
    (bh, bw), (top, left) = g["block"], g["before"]
    image = ih * iw * c                       # bytes of one input batch
    tables = [[b * image for b in range(ob)],
              [((h + top) % bh) * bw * ob * image + ((h + top) // bh) * iw * c for h in range(oh)],
              [((w + left) % bw) * ob * image + ((w + left) // bw) * c for w in range(ow)],
              list(range(c))]
    return [ob, oh, ow, c], tables


TESTS = ("tests/test_kernels_tables.py::test_space_to_batch_and_back_match_tflm",
         "tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models")


@register("SPACE_TO_BATCH_ND", kernels=("space_to_batch.c",), tests=TESTS)
def emit_space_to_batch(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    p = space_to_batch(k, op)
    em.comment(k, op, f"block {p['block']}, padding top/left {p['pad_before']}, copied without "
                      f"requantizing; padding byte {p['pad_value']}, what TFLM writes (a byte of its "
                      f"arena, zeroed at boot), not the zero point {y.zero_point}")
    em.params(SPACE_TO_BATCH_PARAMS, f"L{k}_p", p)
    em.call(f"dk_space_to_batch_s8(&L{k}_p, {em.ptr(x)}, {em.ptr(y)})")


@register("BATCH_TO_SPACE_ND", kernels=("gather.c",), kernel_name="dk_index_map_s8", tests=TESTS)
def emit_batch_to_space(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    dims, tables = batch_to_space(k, op)
    g = geometry(k, op)
    em.comment(k, op, f"block {g['block']}, crops top/left {g['before']}, copied without requantizing")
    emit_index_map(em, k, x, y, dims, tables)
