"""The op units of the compiled runtime, one module per operator family.

Each module holds, for its operators: the parameter struct descriptions (firmware_gen.params),
the TFLM-style prepare (from the operator's tensors to the kernel's parameters, with the
arithmetic of firmware_gen/quant.py), and the emit (the C of one layer), registered under
its TFLite builtin operator names (base.register) or, for a fused pattern, with its matcher
(base.register_fusion). Its kernel is runtime/kernels/<file>.c and its tests are named in the
registration; tests/test_params.py checks that both exist. How to add one:
runtime/README.md.

Importing this package imports every unit, in the order below: reference operators, then the
fused patterns in the order the step planner tries them.
"""

from firmware_gen.ops import (  # noqa: F401
    conv, fully_connected, add, mul, minmax, abs, relu, requantize, quantize, logistic, softmax, mean, pool,
    prelu, pad, transpose, concat, lut, reshape, dequantize, resize, resize_bilinear, strided_slice, slice, split, reduce_max, sum, transpose_conv, log_softmax,
    pack, unpack, batch_matmul, gather, mirror_pad, depth_to_space, squared_difference,
    l2_normalization, elu, rsqrt, space_batch,
    shrink, channel_affine, abs_mean, conv1d,
)
from firmware_gen.ops.base import FUSIONS, REGISTRY  # noqa: F401
