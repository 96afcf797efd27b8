"""PACK (tf.stack): `values_count` inputs of one shape stacked along a new `axis`.

TFLM copies the bytes without requantizing (it checks only the types), so this does too.
Seen from the output, row o (the axes before `axis`) is input 0's row o, then input 1's, and
so on, each row being the input's elements after the axis: CONCATENATION's copy, so the
kernel is dk_concat_s8 (concat.c).
"""

from __future__ import annotations

from drsn_edge.errors import UserError
from firmware_gen.ops.base import checked_axis, layer_name, numel, register


def prepare(k, op) -> tuple[int, int, int]:
    """(axis, rows, bytes per row of each input)."""
    y = op.outputs[0]
    ins = [t for t in op.inputs if t is not None]
    where = f"op {k} PACK ({layer_name(y)})"
    rank = len(y.shape)
    axis = checked_axis(where, int(op.options.get("axis", 0)), rank, "output")
    if int(y.shape[axis]) != len(ins) or any(numel(t.shape) * len(ins) != numel(y.shape) for t in ins):
        raise UserError(f"{where}: {len(ins)} inputs {[list(t.shape) for t in ins]} do not stack into "
                        f"{list(y.shape)} along axis {axis}")
    if y.type != "INT8" or any(t.type != "INT8" for t in ins):
        raise UserError(f"{where} stacks {ins[0].type} into {y.type}; the compiled runtime stacks int8 only")
    return axis, numel(y.shape[:axis]), numel(y.shape[axis + 1:])


@register("PACK", kernels=("concat.c",), kernel_name="dk_concat_s8",
          tests=("tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models",))
def emit(em, k, op):
    y = op.outputs[0]
    ins = [t for t in op.inputs if t is not None]
    axis, outer, size = prepare(k, op)
    em.comment(k, op, f"{len(ins)} inputs along new axis {axis}: {outer} rows of {len(ins)} x {size} "
                      f"bytes, copied without requantizing")
    p = f"L{k}"
    ptrs = [em.ptr(t, f"in{j}") for j, t in enumerate(ins)]
    em.body.append(f"        static const int8_t *const {p}_in[{len(ins)}] = {{{', '.join(ptrs)}}};")
    em.array("int32_t", f"{p}_sizes", [size] * len(ins))
    em.call(f"dk_concat_s8({outer}, {len(ins)}, {p}_in, {p}_sizes, {em.ptr(y)})")
