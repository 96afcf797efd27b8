"""MINIMUM and MAXIMUM (broadcasting): raw int8 comparisons, like TFLM, which requires the
inputs and the output to share one quantization."""

from __future__ import annotations

from firmware_gen import quant
from firmware_gen.ops.base import broadcast, register


def prepare(op) -> None:
    a, b = op.inputs
    y = op.outputs[0]
    quant.check_minmax(a.scale, a.zero_point, b.scale, b.zero_point, y.scale, y.zero_point)


def _emit(em, k, op, fn):
    a, b = op.inputs
    y = op.outputs[0]
    prepare(op)
    em.comment(k, op, "inputs and output share one scale: raw int8 comparison")
    p = f"L{k}"
    broadcast(em, p, a, b)
    em.call(f"{fn}(&{p}_bc, {em.ptr(a)}, {em.ptr(b)}, {em.ptr(y)})")


TESTS = ("tests/test_kernels.py::test_minimum_and_maximum_match_tflm",)


@register("MINIMUM", kernels=("minimum.c",), tests=TESTS, inplace=True)
def emit_minimum(em, k, op):
    _emit(em, k, op, "dk_minimum_s8")


@register("MAXIMUM", kernels=("maximum.c",), tests=TESTS, inplace=True)
def emit_maximum(em, k, op):
    _emit(em, k, op, "dk_maximum_s8")
