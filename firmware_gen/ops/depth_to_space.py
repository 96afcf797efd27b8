"""DEPTH_TO_SPACE and SPACE_TO_DEPTH (tf.nn.depth_to_space / space_to_depth, NHWC, a
constant block size b): a rearrangement of the bytes, without requantizing (as TFLM).

DEPTH_TO_SPACE: output (h, w, c) is input (h / b, w / b, ((h % b) * b + w % b) * C + c);
SPACE_TO_DEPTH is the inverse, output (h, w, (dy * b + dx) * C + c) = input (h * b + dy,
w * b + dx, c). Either way the input offset is a sum of one term per output axis (one of h,
one of w, one of the output channel), so the copy is GATHER's index map (ops/gather.py).
"""

from __future__ import annotations

from drsn_edge.errors import UserError
from firmware_gen.ops.base import layer_name, register
from firmware_gen.ops.gather import emit_index_map


def prepare(k, op) -> tuple[list[int], list[list[int]]]:
    x, y = op.inputs[0], op.outputs[0]
    name = op.opcode
    where = f"op {k} {name} ({layer_name(y)})"
    b = int(op.options.get("blockSize", 0))
    if len(x.shape) != 4 or len(y.shape) != 4 or int(x.shape[0]) != 1:
        raise UserError(f"{where}: input {list(x.shape)}; the compiled runtime takes NHWC with a batch of 1")
    if x.type != "INT8" or y.type != "INT8":
        raise UserError(f"{where} moves {x.type} into {y.type}; the compiled runtime takes int8 only")
    _, ih, iw, ic = (int(d) for d in x.shape)
    _, oh, ow, oc = (int(d) for d in y.shape)
    if name == "DEPTH_TO_SPACE":
        ok = b >= 1 and ic % (b * b) == 0 and (oh, ow, oc) == (ih * b, iw * b, ic // (b * b))
        tables = [[(h // b) * iw * ic + (h % b) * b * oc for h in range(oh)],
                  [(w // b) * ic + (w % b) * oc for w in range(ow)],
                  list(range(oc))]
    else:
        ok = b >= 1 and ih % b == 0 and iw % b == 0 and (oh, ow, oc) == (ih // b, iw // b, ic * b * b)
        tables = [[h * b * iw * ic for h in range(oh)],
                  [w * b * ic for w in range(ow)],
                  [(c // ic // b) * iw * ic + (c // ic % b) * ic + c % ic for c in range(oc)]]
    if not ok:
        raise UserError(f"{where}: block size {b} does not take {list(x.shape)} to {list(y.shape)}")
    return [oh, ow, oc], tables


@register("DEPTH_TO_SPACE", "SPACE_TO_DEPTH", kernels=("gather.c",), kernel_name="dk_index_map_s8",
          tests=("tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models",
                 "tests/test_kernels.py::test_depth_to_space_and_back_match_tflm"))
def emit(em, k, op):
    x, y = op.inputs[0], op.outputs[0]
    dims, tables = prepare(k, op)
    em.comment(k, op, f"block size {int(op.options.get('blockSize', 0))}, copied without requantizing")
    emit_index_map(em, k, x, y, dims, tables)
