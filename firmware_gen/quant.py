"""Quantization "prepare" arithmetic for the dk int8 kernels.

TFLite Micro turns each operator's scales and zero points into integer
parameters (multipliers, shifts, clamp ranges, radii) in its Prepare step,
then its kernels use only those integers. To match TFLM bit for bit, this
module derives the same integers at generation time, with the same float
precision at every step. The reference is the pinned tflite-micro build
(0.dev20261023182759): it forms every scale ratio in double precision from
the float32 scales. (TFLM sources from mid-2026 still formed the SUB, ABS,
RELU and per-tensor FULLY_CONNECTED ratios in single precision; that moves
multipliers by up to ~2^7 units and, rarely, an output by one LSB. The pinned
build's machine code and exhaustive tests against it settle which applies.)
Only the fused-activation bounds are computed in single precision, as in TFLM.

Every ``prepare_*`` function takes plain numbers (scales as read from the
model, i.e. float32 values; zero points as ints) and returns a frozen
dataclass of Python ints whose field names are those of the C parameter structs
(described once in the op units of ``firmware_gen/ops``, declared in the generated
``runtime/include/dk_params.h``), so ``Struct.make`` / ``Struct.init`` read them directly.
The op units call these functions from their ``prepare(op)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

INT8_MIN = -128
INT8_MAX = 127
INT32_MAX = 2**31 - 1

# TFLite ActivationFunctionType values (schema enum).
ACTIVATIONS = {
    "NONE": 0,
    "RELU": 1,
    "RELU_N1_TO_1": 2,
    "RELU6": 3,
    "TANH": 4,
    "SIGN_BIT": 5,
}

# Bits of headroom ADD/SUB give their int8 inputs before rescaling.
ADD_LEFT_SHIFT = 20
LOGISTIC_INPUT_INTEGER_BITS = 4
SOFTMAX_DIFF_INTEGER_BITS = 5
# LOGISTIC and SOFTMAX int8 outputs have this fixed quantization in TFLM.
FIXED_OUTPUT_SCALE = 1.0 / 256.0
FIXED_OUTPUT_ZERO_POINT = -128


class QuantError(ValueError):
    """Quantization parameters that TFLM would reject (or that the kernels
    cannot reproduce)."""


# ---------------------------------------------------------------- helpers --


def _f32(x: float) -> np.float32:
    """A scale as TFLM holds it: an IEEE single."""
    return np.float32(x)


def _d(x) -> float:
    """Exact float32 -> double widening (Python floats are doubles)."""
    return float(x)


def round_half_away(x: float) -> int:
    """C's round(): nearest integer, halves away from zero, computed exactly."""
    frac, whole = math.modf(abs(x))
    n = int(whole) + (1 if frac >= 0.5 else 0)
    return -n if x < 0 else n


@dataclass(frozen=True)
class Requant:
    """multiplier * 2^(shift - 31); shift > 0 means a left shift."""

    multiplier: int
    shift: int


def quantize_multiplier(real: float) -> Requant:
    """TFLM's QuantizeMultiplier: frexp, round the Q31 mantissa, renormalise
    a mantissa that rounded up to 1.0, flush shifts below -31 to zero."""
    real = float(real)
    if real == 0.0:
        return Requant(0, 0)
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed > (1 << 31):
        raise QuantError(f"multiplier {real!r} does not normalise")
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if q_fixed > INT32_MAX:
        raise QuantError(f"multiplier {real!r} overflows int32")
    if shift < -31:
        shift = 0
        q_fixed = 0
    return Requant(int(q_fixed), int(shift))


def quantize_multiplier_smaller_than_one(real: float) -> Requant:
    """TFLM's QuantizeMultiplierSmallerThanOneExp (requires 0 < real < 1)."""
    if not 0.0 < real < 1.0:
        raise QuantError(f"multiplier {real!r} must lie in (0, 1)")
    r = quantize_multiplier(real)
    if r.shift > 0:
        raise QuantError(f"multiplier {real!r} gave a left shift")
    return r


def quantize_multiplier_greater_than_one(real: float) -> Requant:
    """TFLM's QuantizeMultiplierGreaterThanOne (requires real > 1)."""
    if not real > 1.0:
        raise QuantError(f"multiplier {real!r} must exceed 1")
    r = quantize_multiplier(real)
    if r.shift < 0:
        raise QuantError(f"multiplier {real!r} gave a right shift")
    return r


def _activation_code(activation) -> int:
    if isinstance(activation, str):
        try:
            return ACTIVATIONS[activation.upper()]
        except KeyError:
            raise QuantError(f"unknown activation {activation!r}") from None
    return int(activation)


def _quantize_float(scale: float, zero_point: int, value: float) -> int:
    """TFLM's activation-bound quantizer: round(value / scale) in single
    precision, plus the zero point."""
    q = np.float32(value) / _f32(scale)
    return int(zero_point) + round_half_away(float(q))


@dataclass(frozen=True)
class Activation:
    """Output clamp range [min, max] in the quantized domain."""

    min: int
    max: int


def activation_range(activation, scale: float, zero_point: int,
                     qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> Activation:
    """CalculateActivationRangeQuantized: clamp range of a fused activation."""
    code = _activation_code(activation)
    if code == ACTIVATIONS["NONE"]:
        return Activation(qmin, qmax)
    if code == ACTIVATIONS["RELU"]:
        return Activation(max(qmin, _quantize_float(scale, zero_point, 0.0)), qmax)
    if code == ACTIVATIONS["RELU6"]:
        return Activation(max(qmin, _quantize_float(scale, zero_point, 0.0)),
                          min(qmax, _quantize_float(scale, zero_point, 6.0)))
    if code == ACTIVATIONS["RELU_N1_TO_1"]:
        return Activation(max(qmin, _quantize_float(scale, zero_point, -1.0)),
                          min(qmax, _quantize_float(scale, zero_point, 1.0)))
    raise QuantError(f"fused activation {activation!r} has no int8 kernel")


# ------------------------------------------------------- conv / fc / dwconv --


@dataclass(frozen=True)
class ChannelQuant:
    """Per-channel requantization plus offsets and clamp (CONV, DEPTHWISE, FC).

    ``per_channel`` is False when one multiplier serves every channel."""

    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]
    per_channel: bool
    input_offset: int
    output_offset: int
    filter_offset: int
    activation: Activation


def prepare_conv(input_scale: float, input_zero_point: int,
                 filter_scales: Sequence[float], output_scale: float,
                 output_zero_point: int, activation="NONE",
                 num_channels: int | None = None) -> ChannelQuant:
    """CONV_2D / DEPTHWISE_CONV_2D: per channel
    input_scale * filter_scale[c] / output_scale, in double. A single filter
    scale is broadcast to ``num_channels`` channels (TFLM always fills one
    multiplier per output channel for convolutions)."""
    scales = [_f32(s) for s in np.atleast_1d(filter_scales)]
    if num_channels is None:
        num_channels = len(scales)
    if len(scales) not in (1, num_channels):
        raise QuantError("filter scales do not match the output channels")
    mults, shifts = [], []
    for c in range(num_channels):
        fs = scales[c] if len(scales) > 1 else scales[0]
        r = quantize_multiplier(_d(_f32(input_scale)) * _d(fs)
                                / _d(_f32(output_scale)))
        mults.append(r.multiplier)
        shifts.append(r.shift)
    return ChannelQuant(tuple(mults), tuple(shifts), True,
                        -int(input_zero_point), int(output_zero_point), 0,
                        activation_range(activation, output_scale,
                                         output_zero_point))


def prepare_fully_connected(input_scale: float, input_zero_point: int,
                            filter_scales: Sequence[float], output_scale: float,
                            output_zero_point: int, activation="NONE",
                            filter_zero_point: int = 0) -> ChannelQuant:
    """FULLY_CONNECTED: input_scale * filter_scale / output_scale in double,
    one multiplier for per-tensor weights (one scale), one per output channel
    otherwise. The TF 2.21 converter quantizes Dense/MatMul weights per
    channel unless ``_experimental_disable_per_channel_quantization_for_dense_layers``
    is set."""
    scales = np.atleast_1d(filter_scales)
    if int(filter_zero_point) != 0:
        raise QuantError("int8 weights must be symmetric (zero point 0)")
    q = prepare_conv(input_scale, input_zero_point, scales, output_scale,
                     output_zero_point, activation)
    return ChannelQuant(q.multipliers, q.shifts, len(scales) > 1,
                        q.input_offset, q.output_offset, 0, q.activation)


# ---------------------------------------------------------- ADD/SUB/MUL ----


@dataclass(frozen=True)
class AddParams:
    """Mirrors dk_add_params (used by ADD and SUB)."""

    input1_offset: int
    input2_offset: int
    output_offset: int
    left_shift: int
    input1: Requant
    input2: Requant
    output: Requant
    activation: Activation


def prepare_add(input1_scale: float, input1_zero_point: int,
                input2_scale: float, input2_zero_point: int,
                output_scale: float, output_zero_point: int,
                activation="NONE") -> AddParams:
    """ADD: multipliers relative to twice the larger input scale, in double."""
    s1, s2, so = _f32(input1_scale), _f32(input2_scale), _f32(output_scale)
    twice_max = 2.0 * _d(max(s1, s2))
    real1 = _d(s1) / twice_max
    real2 = _d(s2) / twice_max
    real_out = twice_max / ((1 << ADD_LEFT_SHIFT) * _d(so))
    return AddParams(
        -int(input1_zero_point), -int(input2_zero_point), int(output_zero_point),
        ADD_LEFT_SHIFT,
        quantize_multiplier_smaller_than_one(real1),
        quantize_multiplier_smaller_than_one(real2),
        quantize_multiplier_smaller_than_one(real_out),
        activation_range(activation, output_scale, output_zero_point))


def prepare_sub(input1_scale: float, input1_zero_point: int,
                input2_scale: float, input2_zero_point: int,
                output_scale: float, output_zero_point: int,
                activation="NONE") -> AddParams:
    """SUB: the same parameters as ADD (the kernel subtracts instead)."""
    return prepare_add(input1_scale, input1_zero_point, input2_scale,
                       input2_zero_point, output_scale, output_zero_point,
                       activation)


@dataclass(frozen=True)
class MulParams:
    """Mirrors dk_mul_params."""

    input1_offset: int
    input2_offset: int
    output_offset: int
    output: Requant
    activation: Activation


def prepare_mul(input1_scale: float, input1_zero_point: int,
                input2_scale: float, input2_zero_point: int,
                output_scale: float, output_zero_point: int,
                activation="NONE") -> MulParams:
    """MUL: one multiplier input1_scale * input2_scale / output_scale (double)."""
    real = (_d(_f32(input1_scale)) * _d(_f32(input2_scale))
            / _d(_f32(output_scale)))
    return MulParams(-int(input1_zero_point), -int(input2_zero_point),
                     int(output_zero_point), quantize_multiplier(real),
                     activation_range(activation, output_scale,
                                      output_zero_point))


def check_minmax(input1_scale: float, input1_zero_point: int,
                 input2_scale: float, input2_zero_point: int,
                 output_scale: float, output_zero_point: int) -> None:
    """MINIMUM / MAXIMUM: TFLM compares raw int8 values without rescaling, so
    its result only means something when all three tensors share one scale
    and zero point (the converter guarantees this). Raise otherwise."""
    scales = {_f32(input1_scale), _f32(input2_scale), _f32(output_scale)}
    zps = {int(input1_zero_point), int(input2_zero_point), int(output_zero_point)}
    if len(scales) != 1 or len(zps) != 1:
        raise QuantError("MINIMUM/MAXIMUM need identical input and output "
                         f"quantization, got scales {scales} zero points {zps}")


# ------------------------------------------------------------ unary ops ----


@dataclass(frozen=True)
class AbsParams:
    """Mirrors dk_abs_params."""

    input_zero_point: int
    output_zero_point: int
    needs_rescale: bool
    output: Requant


def prepare_abs(input_scale: float, input_zero_point: int,
                output_scale: float, output_zero_point: int) -> AbsParams:
    """ABS: rescale by input_scale / output_scale only when the two scales
    differ."""
    si, so = _f32(input_scale), _f32(output_scale)
    needs = bool(si != so)
    req = quantize_multiplier(_d(si) / _d(so)) if needs else Requant(0, 0)
    return AbsParams(int(input_zero_point), int(output_zero_point), needs, req)


@dataclass(frozen=True)
class ReluParams:
    """Mirrors dk_relu_params."""

    input_zero_point: int
    output_zero_point: int
    output: Requant
    activation: Activation


def prepare_relu(input_scale: float, input_zero_point: int,
                 output_scale: float, output_zero_point: int) -> ReluParams:
    """Standalone RELU: always rescaled by input_scale / output_scale, then
    clamped below at the output zero point."""
    si, so = _f32(input_scale), _f32(output_scale)
    req = quantize_multiplier(_d(si) / _d(so))
    lo = max(INT8_MIN, int(output_zero_point) + round_half_away(
        float(np.float32(0.0) / so)))
    return ReluParams(int(input_zero_point), int(output_zero_point), req,
                      Activation(lo, INT8_MAX))


@dataclass(frozen=True)
class RequantizeParams:
    """Mirrors dk_requantize_params."""

    input_zero_point: int
    output_zero_point: int
    output: Requant


def prepare_requantize(input_scale: float, input_zero_point: int,
                       output_scale: float,
                       output_zero_point: int) -> RequantizeParams:
    """QUANTIZE int8 -> int8: input_scale / output_scale in double."""
    real = _d(_f32(input_scale)) / _d(_f32(output_scale))
    return RequantizeParams(int(input_zero_point), int(output_zero_point),
                            quantize_multiplier(real))


def calculate_input_radius(input_integer_bits: int, input_left_shift: int,
                           total_signed_bits: int = 31) -> int:
    """Largest |input| that cannot overflow after the input rescale
    (TFLM's CalculateInputRadius, floating-point variant)."""
    max_rescaled = (1.0 * ((1 << input_integer_bits) - 1)
                    * (1 << (total_signed_bits - input_integer_bits)))
    if input_left_shift >= 0:
        max_rescaled /= 1 << input_left_shift
    else:
        max_rescaled *= 1 << -input_left_shift
    return int(math.floor(max_rescaled))


def _check_fixed_output(output_scale: float, output_zero_point: int,
                        op: str) -> None:
    if int(output_zero_point) != FIXED_OUTPUT_ZERO_POINT:
        raise QuantError(f"{op} int8 output zero point must be -128")
    if _f32(output_scale) != _f32(FIXED_OUTPUT_SCALE):
        raise QuantError(f"{op} int8 output scale must be 1/256")


@dataclass(frozen=True)
class LogisticParams:
    """Mirrors dk_logistic_params."""

    input_zero_point: int
    input_range_radius: int
    input_multiplier: int
    input_left_shift: int


def prepare_logistic(input_scale: float, input_zero_point: int,
                     output_scale: float = FIXED_OUTPUT_SCALE,
                     output_zero_point: int = FIXED_OUTPUT_ZERO_POINT
                     ) -> LogisticParams:
    """LOGISTIC: rescale inputs to Q4.27. TFLM rounds the frexp mantissa
    itself here (no renormalisation as in quantize_multiplier)."""
    _check_fixed_output(output_scale, output_zero_point, "LOGISTIC")
    real = _d(_f32(input_scale)) * float(1 << (31 - LOGISTIC_INPUT_INTEGER_BITS))
    q, left_shift = math.frexp(real)
    mult = round_half_away(q * (1 << 31))
    if mult > INT32_MAX:
        raise QuantError("LOGISTIC input multiplier rounds up to 2^31")
    radius = calculate_input_radius(LOGISTIC_INPUT_INTEGER_BITS, left_shift)
    return LogisticParams(int(input_zero_point), min(radius, INT32_MAX),
                          int(mult), int(left_shift))


@dataclass(frozen=True)
class SoftmaxParams:
    """Mirrors dk_softmax_params."""

    input_multiplier: int
    input_left_shift: int
    diff_min: int


def softmax_input_real(input_scale: float, beta: float = 1.0) -> float:
    """beta * input_scale in Q5.26, capped at 2^31 - 1: the real multiplier SOFTMAX and
    LOG_SOFTMAX scale their input differences by (TFLM needs it above one)."""
    return min(_d(_f32(beta)) * _d(_f32(input_scale)) * (1 << (31 - SOFTMAX_DIFF_INTEGER_BITS)),
               (1 << 31) - 1.0)


def prepare_softmax(input_scale: float, beta: float = 1.0,
                    output_scale: float = FIXED_OUTPUT_SCALE,
                    output_zero_point: int = FIXED_OUTPUT_ZERO_POINT
                    ) -> SoftmaxParams:
    """SOFTMAX: beta * input_scale scaled into Q5.26 (capped at 2^31 - 1),
    and the most negative difference that still contributes."""
    _check_fixed_output(output_scale, output_zero_point, "SOFTMAX")
    r = quantize_multiplier_greater_than_one(softmax_input_real(input_scale, beta))
    diff_min = int(-1.0 * calculate_input_radius(SOFTMAX_DIFF_INTEGER_BITS,
                                                 r.shift))
    return SoftmaxParams(r.multiplier, r.shift, diff_min)


def prepare_log_softmax(input_scale: float) -> dict:
    """LOG_SOFTMAX (TFLM's PreprocessLogSoftmaxScalingExp, beta 1): the input scale into
    Q5.26 as SOFTMAX's (capped at 2^31 - 1, multiplier > 1), then 2^(31 - left shift) /
    multiplier (double) as a multiplier below one, and diff_min = -input radius."""
    r = quantize_multiplier_greater_than_one(softmax_input_real(input_scale))
    reverse_real = (1 << (31 - r.shift)) / float(r.multiplier)
    if not 0.0 < reverse_real < 1.0:
        raise QuantError(f"LOG_SOFTMAX reverse scaling {reverse_real!r} is not below one")
    rev = quantize_multiplier(reverse_real)
    if rev.shift > 0:
        raise QuantError("LOG_SOFTMAX reverse scaling gave a left shift")
    diff_min = -calculate_input_radius(SOFTMAX_DIFF_INTEGER_BITS, r.shift)
    return {"input_multiplier": r.multiplier, "input_left_shift": r.shift,
            "reverse_multiplier": rev.multiplier, "reverse_shift": rev.shift, "diff_min": diff_min}


# ------------------------------------------------------ reductions/pools ---


@dataclass(frozen=True)
class MeanParams:
    """Mirrors dk_mean_params."""

    input_zero_point: int
    output_zero_point: int
    num_elements: int
    output: Requant


def prepare_mean(input_scale: float, input_zero_point: int,
                 output_scale: float, output_zero_point: int,
                 num_elements: int) -> MeanParams:
    """MEAN: input_scale / output_scale (double), then TFLM folds 1/n into the
    multiplier: shift it left by floor(log2 n) (at most 32, and at most
    31 + shift), divide by n with truncation, lower the exponent to match."""
    n = int(num_elements)
    if n <= 0:
        raise QuantError("MEAN over an empty axis")
    base = quantize_multiplier(_d(_f32(input_scale)) / _d(_f32(output_scale)))
    extra = n.bit_length() - 1
    extra = min(extra, 32)
    extra = min(extra, 31 + base.shift)
    if extra < 0:
        raise QuantError("MEAN multiplier too small to fold 1/n into")
    mult = (base.multiplier << extra) // n
    if mult > INT32_MAX:
        raise QuantError("MEAN multiplier overflows int32")
    return MeanParams(int(input_zero_point), int(output_zero_point), n,
                      Requant(int(mult), base.shift - extra))


def prepare_sum(input_scale: float, input_zero_point: int,
                output_scale: float, output_zero_point: int,
                num_elements: int) -> MeanParams:
    """SUM: MEAN's parameters without the 1/n: input_scale / output_scale (double)."""
    n = int(num_elements)
    if n <= 0:
        raise QuantError("SUM over an empty axis")
    base = quantize_multiplier(_d(_f32(input_scale)) / _d(_f32(output_scale)))
    return MeanParams(int(input_zero_point), int(output_zero_point), n,
                      Requant(int(base.multiplier), int(base.shift)))


@dataclass(frozen=True)
class PoolParams:
    """Mirrors dk_pool_params."""

    stride_h: int
    stride_w: int
    pad_h: int
    pad_w: int
    filter_h: int
    filter_w: int
    activation: Activation


def prepare_pool(input_scale: float, input_zero_point: int,
                 output_scale: float, output_zero_point: int,
                 input_hw: tuple[int, int], filter_hw: tuple[int, int],
                 stride_hw: tuple[int, int], padding: str,
                 activation="NONE") -> PoolParams:
    """AVERAGE_POOL_2D / MAX_POOL_2D: no rescaling; TFLM requires input and
    output quantization to agree (scales within 1e-6)."""
    if (abs(_d(_f32(input_scale)) - _d(_f32(output_scale))) > 1.0e-6
            or int(input_zero_point) != int(output_zero_point)):
        raise QuantError("pooling needs identical input/output quantization")
    _, pad_h = conv_output_size(input_hw[0], filter_hw[0], stride_hw[0], 1,
                                padding)
    _, pad_w = conv_output_size(input_hw[1], filter_hw[1], stride_hw[1], 1,
                                padding)
    return PoolParams(int(stride_hw[0]), int(stride_hw[1]), pad_h, pad_w,
                      int(filter_hw[0]), int(filter_hw[1]),
                      activation_range(activation, output_scale,
                                       output_zero_point))


# ------------------------------------------------------- shape planning ----


def conv_output_size(in_size: int, filter_size: int, stride: int,
                     dilation: int, padding: str) -> tuple[int, int]:
    """(output size, padding before the first element) for SAME / VALID, as
    TFLM computes them (odd total padding puts the extra element after)."""
    padding = padding.upper()
    eff = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        out = (in_size + stride - 1) // stride
    elif padding == "VALID":
        out = (in_size + stride - eff) // stride
    else:
        raise QuantError(f"unknown padding {padding!r}")
    total = max((out - 1) * stride + eff - in_size, 0)
    return out, total // 2


@dataclass(frozen=True)
class BroadcastPlan:
    """Mirrors dk_broadcast: a 4-D iteration over the output with per-input
    element strides (0 where an input is broadcast)."""

    out_dims: tuple[int, int, int, int]
    in1_strides: tuple[int, int, int, int]
    in2_strides: tuple[int, int, int, int]

    @property
    def is_elementwise(self) -> bool:
        return (self.in1_strides[:3] == (0, 0, 0)
                and self.in2_strides[:3] == (0, 0, 0)
                and self.out_dims[:3] == (1, 1, 1)
                and self.in1_strides[3] == 1 and self.in2_strides[3] == 1)


def broadcast_plan(shape1: Sequence[int], shape2: Sequence[int]) -> BroadcastPlan:
    """Plan numpy-style broadcasting of two shapes (any rank) as at most four
    nested loops: size-1 output axes are dropped and neighbouring axes with
    the same broadcast pattern are merged."""
    rank = max(len(shape1), len(shape2))
    a = [1] * (rank - len(shape1)) + [int(d) for d in shape1]
    b = [1] * (rank - len(shape2)) + [int(d) for d in shape2]
    out = []
    for da, db in zip(a, b):
        if da != db and da != 1 and db != 1:
            raise QuantError(f"shapes {tuple(shape1)} and {tuple(shape2)} "
                             "do not broadcast")
        out.append(max(da, db))
    # Per axis: (size, does input1 vary, does input2 vary); drop size-1 axes.
    axes = [(o, da != 1, db != 1) for o, da, db in zip(out, a, b) if o != 1]
    merged: list[list] = []
    for size, v1, v2 in axes:
        if merged and merged[-1][1] == v1 and merged[-1][2] == v2:
            merged[-1][0] *= size
        else:
            merged.append([size, v1, v2])
    if len(merged) > 4:
        raise QuantError(f"broadcast of {tuple(shape1)} and {tuple(shape2)} "
                         "needs more than 4 loops")
    merged = [[1, False, False]] * (4 - len(merged)) + merged
    dims = tuple(m[0] for m in merged)
    strides1, strides2 = [0] * 4, [0] * 4
    step1 = step2 = 1
    for i in range(3, -1, -1):
        size, v1, v2 = merged[i]
        if v1:
            strides1[i] = step1
            step1 *= size
        if v2:
            strides2[i] = step2
            step2 *= size
    if dims[:3] == (1, 1, 1):
        # Keep the unit-stride convention of the same-shape case.
        strides1[3] = 1 if merged[3][1] else 0
        strides2[3] = 1 if merged[3][2] else 0
    return BroadcastPlan(dims, tuple(strides1), tuple(strides2))


def mean_plan(shape: Sequence[int], axes: Sequence[int]) -> tuple[int, int, int]:
    """(outer, reduce, inner) view of MEAN over ``axes``: the reduced axes
    must be contiguous once size-1 axes are ignored."""
    shape = [int(d) for d in shape]
    rank = len(shape)
    reduced = {int(ax) % rank for ax in axes}
    spanning = [i for i in range(rank) if i in reduced and shape[i] != 1]
    if not spanning:
        return int(np.prod(shape, dtype=np.int64)), 1, 1
    lo, hi = spanning[0], spanning[-1]
    if any(shape[i] != 1 and i not in reduced for i in range(lo, hi + 1)):
        raise QuantError(f"MEAN axes {tuple(axes)} of {tuple(shape)} are "
                         "not contiguous")
    outer = int(np.prod(shape[:lo], dtype=np.int64))
    reduce = int(np.prod(shape[lo:hi + 1], dtype=np.int64))
    inner = int(np.prod(shape[hi + 1:], dtype=np.int64))
    return outer, reduce, inner


# ------------------------------------------------- integer reference math --


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLM's MultiplyByQuantizedMultiplier on Python ints (for tables the generator
    fills): wrapping left shift, saturating rounding doubling high multiply, rounding
    divide by a power of two (halves away from zero)."""
    def wrap(v):
        return ((v + 2**31) % 2**32) - 2**31
    left, right = max(shift, 0), max(-shift, 0)
    a = wrap(int(x) << left)
    if a == -2**31 and multiplier == -2**31:
        high = INT32_MAX
    else:
        p = a * int(multiplier)
        nudge = (1 << 30) if p >= 0 else 1 - (1 << 30)
        q = p + nudge
        high = abs(q) // (1 << 31) * (1 if q >= 0 else -1)   # C division truncates
    mask = (1 << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if remainder > threshold else 0)


def abs_table(p: AbsParams) -> list[int]:
    """ABS as a 256-entry table indexed by the input's byte ((uint8)x): what the dk ABS
    kernel (and TFLM) gives for every int8 input."""
    table = []
    for byte in range(256):
        v = byte - 256 if byte >= 128 else byte
        magnitude = abs(v - p.input_zero_point)
        y = (multiply_by_quantized_multiplier(magnitude, p.output.multiplier, p.output.shift)
             if p.needs_rescale else magnitude)
        table.append(max(INT8_MIN, min(INT8_MAX, y + p.output_zero_point)))
    return table


def leaky_relu_table(input_scale: float, input_zero_point: int, alpha: float,
                     output_scale: float, output_zero_point: int) -> list[int]:
    """LEAKY_RELU as a 256-entry table indexed by (uint8)x. TFLM's Prepare: two multipliers
    from doubles, input_scale * alpha / output_scale (alpha as the float32 the model holds)
    and input_scale / output_scale; Eval: the identity one for x - zp_in >= 0, the alpha one
    below, plus the output zero point, clamped to int8."""
    si, so = _d(_f32(input_scale)), _d(_f32(output_scale))
    q_alpha = quantize_multiplier(si * _d(np.float32(alpha)) / so)
    q_id = quantize_multiplier(si / so)
    table = []
    for byte in range(256):
        v = (byte - 256 if byte >= 128 else byte) - int(input_zero_point)
        q = q_id if v >= 0 else q_alpha
        y = int(output_zero_point) + multiply_by_quantized_multiplier(v, q.multiplier, q.shift)
        table.append(max(INT8_MIN, min(INT8_MAX, y)))
    return table


def relu6_table(input_scale: float, input_zero_point: int) -> list[int]:
    """Standalone RELU6 (int8) as TFLM computes it: the raw input clamped between the input
    zero point and 6.0 quantized with the input's scale (round(6 / scale) in single precision
    + zp). TFLM does not rescale to the output's quantization, even where the converter gave
    the output another one; the device must match TFLM, so neither does this."""
    six = max(INT8_MIN, min(INT8_MAX, _quantize_float(input_scale, input_zero_point, 6.0)))
    zero = int(input_zero_point)
    return [min(six, max(zero, byte - 256 if byte >= 128 else byte)) for byte in range(256)]


TANH_OUTPUT_SCALE = 1.0 / 128.0


def prepare_tanh(input_scale: float, input_zero_point: int, output_scale: float,
                 output_zero_point: int) -> LogisticParams:
    """TANH: TFLM fixes the int8 output at scale 1/128, zero point 0, and rescales the input
    to Q4.27 exactly as for LOGISTIC."""
    if int(output_zero_point) != 0 or _f32(output_scale) != _f32(TANH_OUTPUT_SCALE):
        raise QuantError("TANH int8 output must have scale 1/128 and zero point 0")
    return prepare_logistic(input_scale, input_zero_point)


def _i16_srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul on int16."""
    if a == b == -32768:
        return 32767
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    q = ab + nudge
    return abs(q) // (1 << 15) * (1 if q >= 0 else -1)     # C division truncates


def _i16_sdhm(a: int, b: int) -> int:
    """TFLite's SaturatingDoublingHighMul on int16: no rounding nudge."""
    if a == b == -32768:
        return 32767
    ab = a * b
    return abs(ab) // (1 << 15) * (1 if ab >= 0 else -1)


def _i16_sat_shl(x: int, amount: int) -> int:
    return max(-32768, min(32767, x * (1 << amount)))


def _rdbpot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def _int16_multiplier(m32: int) -> int:
    """TFLite's DownScaleInt32ToInt16Multiplier."""
    if m32 >= INT32_MAX - (1 << 15):
        return 32767
    return (m32 + (1 << 15)) >> 16


def hard_swish_table(input_scale: float, input_zero_point: int,
                     output_scale: float, output_zero_point: int) -> list[int]:
    """HARD_SWISH (int8) as a 256-entry table indexed by (uint8)x, with TFLite's int16
    fixed-point arithmetic: the input on a 2^7 finer scale, a "relu-ish" factor in [0, 1]
    (x rescaled so that 3.0 is 2^15, saturated, shifted to [0, 1]) times the input on the
    output scale, then the output shift and zero point. Multipliers from single-precision
    scale ratios, as Prepare computes them."""
    si, so = _f32(input_scale), _f32(output_scale)
    hires = np.float32(1.0 / 128.0) * si
    out_q = quantize_multiplier(_d(np.float32(hires / so)))
    relu_q = quantize_multiplier(_d(np.float32(hires / np.float32(3.0 / 32768.0))))
    if out_q.shift > 0:
        raise QuantError("HARD_SWISH output multiplier above 1 (TFLM refuses it)")
    out_m16, relu_m16 = _int16_multiplier(out_q.multiplier), _int16_multiplier(relu_q.multiplier)
    table = []
    for byte in range(256):
        v = (byte - 256 if byte >= 128 else byte) - int(input_zero_point)
        hi = v * (1 << 7)
        pre_out = _i16_srdhm(hi, out_m16)
        r = hi
        if relu_q.shift > 0:
            r = _i16_sat_shl(r, relu_q.shift - 1)
        r = _i16_srdhm(r, relu_m16)
        if relu_q.shift > 0:
            r = _i16_sat_shl(r, 1)
        if relu_q.shift < 0:
            r = _rdbpot(r, -relu_q.shift)
        r = (r + (1 << 15)) >> 1
        y = _rdbpot(_i16_sdhm(r, pre_out), -out_q.shift) + int(output_zero_point)
        table.append(max(INT8_MIN, min(INT8_MAX, y)))
    return table


# ------------------------------------------- LOGISTIC as a 256-entry table --
# The generator tabulates LOGISTIC (one int8 input, constant parameters): the same
# fixed-point steps as runtime/kernels/fixedpoint.c and logistic.c (TFLM's int8 logistic)
# on Python ints, so dk_lut_s8 gives what dk_logistic_s8 gives, in 1 load per element.

def _w32(v: int) -> int:
    return ((v + 2**31) % 2**32) - 2**31


def _srdhm32(a: int, b: int) -> int:
    if a == b == -2**31:
        return INT32_MAX
    q = a * b + ((1 << 30) if a * b >= 0 else 1 - (1 << 30))
    return abs(q) // (1 << 31) * (1 if q >= 0 else -1)     # C division truncates


def _sat_shl32(x: int, e: int) -> int:
    if e == 0:
        return x
    threshold = (1 << (31 - e)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return -2**31
    return _w32(x << e)


_Q31_EXP_MINUS_ONE_EIGHTH = 1895147668
_Q31_ONE_THIRD = 715827883
_Q31_EXP_MINUS_POW2 = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)


def _exp_quarter_interval(a: int) -> int:
    x = _w32(a + (1 << 28))
    x2 = _srdhm32(x, x)
    x3 = _srdhm32(x2, x)
    x4 = _srdhm32(x2, x2)
    poly = _rdbpot(_w32(_srdhm32(_w32(_rdbpot(x4, 2) + x3), _Q31_ONE_THIRD) + x2), 1)
    return _w32(_Q31_EXP_MINUS_ONE_EIGHTH + _srdhm32(_Q31_EXP_MINUS_ONE_EIGHTH, _w32(x + poly)))


def _exp_on_negative_values(a: int, integer_bits: int) -> int:
    fractional_bits = 31 - integer_bits
    quarter = 1 << (fractional_bits - 2)
    a_mod = _w32((a & (quarter - 1)) - quarter)
    remainder = _w32(a_mod - a)
    result = _exp_quarter_interval(_sat_shl32(a_mod, integer_bits))
    for j in range(-2, 5):
        if integer_bits > j and remainder & (1 << (fractional_bits + j)):
            result = _srdhm32(result, _Q31_EXP_MINUS_POW2[j + 2])
    if integer_bits > 5 and a < -(1 << (36 - integer_bits)):
        result = 0
    return INT32_MAX if a == 0 else result


def _one_over_one_plus_x(a: int) -> int:
    s = a + INT32_MAX
    s += 1 if s >= 0 else -1
    half = s // 2 if s >= 0 else -((-s) // 2)               # C division truncates
    x = _w32(1515870810 + _srdhm32(half, -1010580540))      # 48/17 - 32/17 d, Q2.29
    for _ in range(3):
        x = _w32(x + _sat_shl32(_srdhm32(x, _w32((1 << 29) - _srdhm32(half, x))), 2))
    return _sat_shl32(x, 1)


def _fx_logistic(a: int, integer_bits: int) -> int:
    if a == 0:
        return 1 << 30
    positive = _one_over_one_plus_x(_exp_on_negative_values(_w32(-abs(a)), integer_bits))
    return positive if a > 0 else _w32(INT32_MAX - positive)


def logistic_table(p: LogisticParams) -> list[int]:
    """LOGISTIC as a 256-entry table indexed by (uint8)x: dk_logistic_s8's result for every
    int8 input (saturation beyond the radius, Q4.27 rescale, fixed-point logistic, 1/256
    steps from zero point -128)."""
    table = []
    for byte in range(256):
        x = (byte - 256 if byte >= 128 else byte) - int(p.input_zero_point)
        if x <= -p.input_range_radius:
            y = INT8_MIN
        elif x >= p.input_range_radius:
            y = INT8_MAX
        else:
            q = multiply_by_quantized_multiplier(x, p.input_multiplier, p.input_left_shift)
            y = _rdbpot(_fx_logistic(q, LOGISTIC_INPUT_INTEGER_BITS), 23) + FIXED_OUTPUT_ZERO_POINT
        table.append(max(INT8_MIN, min(INT8_MAX, y)))
    return table
