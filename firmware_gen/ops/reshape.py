"""RESHAPE, EXPAND_DIMS, SQUEEZE: shape only; the output shares its input's memory."""

from __future__ import annotations

from firmware_gen.ops.base import register


@register("RESHAPE", "EXPAND_DIMS", "SQUEEZE", kernels=("copy.c",),
          tests=("tests/test_kernels.py::test_conv1d_reshapes_around_conv2d_are_plain_copies",))
def emit(em, k, op):
    em.comment(k, op, "shape only: shares its input's memory")
