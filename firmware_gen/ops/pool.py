"""AVERAGE_POOL_2D and MAX_POOL_2D (input and output share quantization)."""

from __future__ import annotations

from drsn_edge.errors import UserError
from firmware_gen import quant
from firmware_gen.params import ACTIVATION, DIMS, Struct, dims, field
from firmware_gen.ops.base import act_name, layer_name, register

POOL_PARAMS = Struct("dk_pool_params", [
    field("stride_h", "int32_t"),
    field("stride_w", "int32_t"),
    field("pad_h", "int32_t"),
    field("pad_w", "int32_t"),
    field("filter_h", "int32_t"),
    field("filter_w", "int32_t"),
    field("activation", ACTIVATION),
])


def prepare(k, op) -> quant.PoolParams:
    x, y = op.inputs[0], op.outputs[0]
    o = op.options
    if len(x.shape) != 4 or len(y.shape) != 4:
        raise UserError(f"op {k} {op.opcode} ({layer_name(y)}) has input {list(x.shape)}; "
                        f"pooling takes [n, h, w, c]")
    return quant.prepare_pool(x.scale, x.zero_point, y.scale, y.zero_point, tuple(x.shape[1:3]),
                              (o["filterHeight"], o["filterWidth"]), (o["strideH"], o["strideW"]),
                              _padding(op), act_name(op))


def _padding(op) -> str:
    return "SAME" if op.options.get("padding", 0) == 0 else "VALID"


def _emit(em, k, op, fn):
    x, y = op.inputs[0], op.outputs[0]
    q = prepare(k, op)
    pad, act = _padding(op), act_name(op)
    em.comment(k, op, f"filter {q.filter_h}x{q.filter_w} stride {q.stride_h}x{q.stride_w} pad {pad} "
                      f"({q.pad_h},{q.pad_w}) act {act}; input and output share one scale")
    p = f"L{k}"
    em.params(POOL_PARAMS, f"{p}_p", q)
    for nm, t in (("in", x), ("out", y)):
        em.params(DIMS, f"{p}_{nm}", dims(t.shape))
    cast = "(void)" if fn == "dk_avgpool_s8" else ""
    em.call(f"{cast}{fn}(&{p}_p, &{p}_in, {em.ptr(x)}, &{p}_out, {em.ptr(y)})")


TESTS = ("tests/test_kernels.py::test_average_and_max_pool_match_tflm",)


@register("MAX_POOL_2D", kernels=("maxpool.c",), tests=TESTS)
def emit_max(em, k, op):
    _emit(em, k, op, "dk_maxpool_s8")


@register("AVERAGE_POOL_2D", kernels=("avgpool.c",), tests=TESTS)
def emit_average(em, k, op):
    _emit(em, k, op, "dk_avgpool_s8")
