"""CONCATENATION (any axis, no fused activation; inputs and output share quantization)."""

from __future__ import annotations

from drsn_edge.errors import UserError
from firmware_gen.ops.base import layer_name, numel, register, same_quant


@register("CONCATENATION", kernels=("concat.c",),
          tests=("tests/test_byom.py::test_generated_c_is_bit_exact_to_tflm_for_other_models",))
def emit(em, k, op):
    y = op.outputs[0]
    ins = [t for t in op.inputs if t is not None]
    same_quant(k, op, ins)
    if op.options.get("fusedActivationFunction", 0):
        raise UserError(f"op {k} CONCATENATION ({layer_name(y)}) has a fused activation; the compiled "
                        f"runtime concatenates without one")
    axis = int(op.options.get("axis", 0))
    axis = axis + len(y.shape) if axis < 0 else axis
    outer = numel(y.shape[:axis])
    sizes = [numel(t.shape[axis:]) for t in ins]
    em.comment(k, op, f"axis {axis}: {outer} rows of {' + '.join(map(str, sizes))} bytes")
    p = f"L{k}"
    ptrs = [em.ptr(t, f"in{j}") for j, t in enumerate(ins)]
    em.body.append(f"        static const int8_t *const {p}_in[{len(ins)}] = {{{', '.join(ptrs)}}};")
    em.array("int32_t", f"{p}_sizes", sizes)
    em.call(f"dk_concat_s8({outer}, {len(ins)}, {p}_in, {p}_sizes, {em.ptr(y)})")
