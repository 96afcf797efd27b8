"""Every dk kernel against the TFLM host runtime, bit for bit.

Each test converts one small int8 model holding several independent copies
("branches") of an operator, each branch with its own random shapes and its
own random calibration range, so one conversion yields several distinct sets
of quantization parameters. The model runs in TFLM with every tensor kept;
for every instance of the operator, the int8 tensors TFLM actually fed it are
given to the dk kernel (parameters from firmware_gen.quant) and the result
must equal TFLM's output tensor exactly. Inputs are drawn four ways: uniform
over int8, only -128/127, all -128, all 127, so saturation paths run too.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from firmware_gen import hostlib, quant  # noqa: E402
from firmware_gen import tflm_oracle as oracle  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*tf.lite.Interpreter is deprecated:UserWarning")

PADDING = {0: "SAME", 1: "VALID"}
fake_quant = tf.quantization.fake_quant_with_min_max_args


# ------------------------------------------------------- model building ----


def convert(branches, seed: int, per_channel_dense: bool = True,
            samples: int = 12) -> bytes:
    """Convert branches [(inputs [(shape, lo, hi)], fn(*xs) -> outputs)] into
    one full-int8 model; each input is calibrated on uniform data in
    [lo, hi]."""
    specs, ranges, parts = [], [], []
    for b, (inputs, fn) in enumerate(branches):
        start = len(specs)
        for i, (shape, lo, hi) in enumerate(inputs):
            specs.append(tf.TensorSpec(shape, tf.float32, name=f"b{b}_{i}"))
            ranges.append((lo, hi))
        parts.append((start, len(specs), fn))

    def model_fn(*xs):
        outs = []
        for start, stop, fn in parts:
            r = fn(*xs[start:stop])
            outs.extend(r if isinstance(r, (list, tuple)) else [r])
        return outs

    holder = tf.Module()
    holder.f = tf.function(model_fn, input_signature=specs)
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(samples):
            yield {s.name: rng.uniform(lo, hi, size=s.shape).astype(np.float32)
                   for s, (lo, hi) in zip(specs, ranges)}

    conv = tf.lite.TFLiteConverter.from_concrete_functions(
        [holder.f.get_concrete_function()], holder)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    conv._experimental_disable_per_channel_quantization_for_dense_layers = (
        not per_channel_dense)
    return conv.convert()


def random_range(rng, scale_lo=0.05, scale_hi=8.0):
    """A calibration interval of random width and offset that contains zero
    (a real activation range does; an all-negative input to a fused ReLU
    would give a degenerate output scale that TFLM refuses)."""
    width = math.exp(rng.uniform(math.log(scale_lo), math.log(scale_hi)))
    centre = rng.uniform(-0.4, 0.4) * width
    return centre - width / 2, centre + width / 2


def input_draws(model: bytes, seed: int):
    """Four input sets: uniform int8 (an input of 256*k elements instead
    holds every int8 value k times, so a [1, 256, 1] x [1, 1, 256] broadcast
    sees every pair of values), only extremes, all -128, all 127."""
    rng = np.random.default_rng(seed)
    shapes = [t.shape for t in oracle.model_inputs(model)]
    all_values = np.arange(-128, 128, dtype=np.int8)

    def uniform(shape):
        n = int(np.prod(shape))
        if n % 256 == 0:
            return rng.permutation(np.tile(all_values, n // 256)).reshape(shape)
        return rng.integers(-128, 128, size=shape).astype(np.int8)
    yield [uniform(s) for s in shapes]
    yield [rng.choice(np.array([-128, 127], dtype=np.int8), size=s) for s in shapes]
    yield [np.full(s, -128, dtype=np.int8) for s in shapes]
    yield [np.full(s, 127, dtype=np.int8) for s in shapes]


# ------------------------------------------- running one op through dk ----


def _act(op) -> int:
    return int(op.options.get("fusedActivationFunction", 0))


# Plausible but wrong parameter derivations, mostly the single-precision
# ratios of older TFLM sources. A test "has teeth" for an operator when,
# somewhere, the wrong derivation gives a different output than TFLM while
# quant.py's derivation gives the same.
def _alt_add(s1, z1, s2, z2, so, zo, act):
    f32 = np.float32
    twice_max = f32(2.0) * max(f32(s1), f32(s2))
    p = quant.prepare_add(s1, z1, s2, z2, so, zo, act)
    return quant.AddParams(
        p.input1_offset, p.input2_offset, p.output_offset, p.left_shift,
        quant.quantize_multiplier(float(f32(s1) / twice_max)),
        quant.quantize_multiplier(float(f32(s2) / twice_max)),
        quant.quantize_multiplier(float(twice_max / (f32(1 << 20) * f32(so)))),
        p.activation)


_alt_sub = _alt_add


def _single_product_quant(si, zi, scales, so, zo, act, num_channels=None):
    scales = np.atleast_1d(scales)
    n = num_channels or len(scales)
    per = [quant.quantize_multiplier(float(np.float32(si) * np.float32(fs))
                                     / float(np.float32(so)))
           for fs in np.broadcast_to(scales, (n,))]
    q = quant.prepare_conv(si, zi, scales, so, zo, act, n)
    return quant.ChannelQuant(tuple(r.multiplier for r in per),
                              tuple(r.shift for r in per), q.per_channel,
                              q.input_offset, q.output_offset, 0, q.activation)


def _alt_fc(si, zi, scales, so, zo, act, fzp):
    q = _single_product_quant(si, zi, scales, so, zo, act)
    return quant.ChannelQuant(q.multipliers, q.shifts, len(np.atleast_1d(scales)) > 1,
                              q.input_offset, q.output_offset, 0, q.activation)


_alt_conv = _single_product_quant


def _single_ratio(si, so):
    return quant.quantize_multiplier(float(np.float32(si) / np.float32(so)))


def _alt_mean(si, zi, so, zo, n):
    # 1/n folded in exactly instead of TFLM's truncated integer division.
    r = quant.quantize_multiplier(float(np.float32(si)) / float(np.float32(so)) / n)
    return quant.MeanParams(zi, zo, n, r)


def _alt_mul(s1, z1, s2, z2, so, zo, act):
    p = quant.prepare_mul(s1, z1, s2, z2, so, zo, act)
    r = quant.quantize_multiplier(float(np.float32(s1) * np.float32(s2)
                                        / np.float32(so)))
    return quant.MulParams(p.input1_offset, p.input2_offset, p.output_offset,
                           r, p.activation)


def run_dk(op: oracle.Operator, xs: list, alt: bool = False) -> np.ndarray:
    """Run the dk kernel for one TFLM operator on the given input arrays
    (with ``alt``, use a plausible wrong parameter derivation instead)."""
    out_t = op.outputs[0]
    so, zo = out_t.scale, out_t.zero_point
    name = op.opcode
    if name in ("ADD", "SUB"):
        a, b = op.inputs[:2]
        prepare = {("ADD", False): quant.prepare_add, ("SUB", False): quant.prepare_sub,
                   ("ADD", True): _alt_add, ("SUB", True): _alt_sub}[name, alt]
        p = prepare(a.scale, a.zero_point, b.scale, b.zero_point, so, zo, _act(op))
        fn = hostlib.add if name == "ADD" else hostlib.sub
        return fn(xs[0], xs[1], p)
    if name == "MUL":
        a, b = op.inputs[:2]
        prepare = _alt_mul if alt else quant.prepare_mul
        p = prepare(a.scale, a.zero_point, b.scale, b.zero_point, so, zo, _act(op))
        return hostlib.mul(xs[0], xs[1], p)
    if name == "SQUARED_DIFFERENCE":
        from firmware_gen.ops import squared_difference
        return hostlib.squared_difference(xs[0], xs[1], squared_difference.prepare(op.index, op))
    if name in ("MINIMUM", "MAXIMUM"):
        a, b = op.inputs[:2]
        quant.check_minmax(a.scale, a.zero_point, b.scale, b.zero_point, so, zo)
        fn = hostlib.minimum if name == "MINIMUM" else hostlib.maximum
        return fn(xs[0], xs[1])
    if name == "TRANSPOSE_CONV":
        from firmware_gen.ops import transpose_conv
        q, geo = transpose_conv.prepare(op.index, op)
        bias = op.inputs[3].data if len(op.inputs) > 3 and op.inputs[3] is not None else None
        return hostlib.transpose_conv(xs[2], op.inputs[1].data, bias, q, geo, out_t.shape)
    t = op.inputs[0]
    si, zi = t.scale, t.zero_point
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w, bias = op.inputs[1], op.inputs[2] if len(op.inputs) > 2 else None
        channels = w.shape[0] if name == "CONV_2D" else w.shape[3]
        prepare = _alt_conv if alt else quant.prepare_conv
        q = prepare(si, zi, w.scales, so, zo, _act(op), channels)
        o = op.options
        geometry = ((o["strideH"], o["strideW"]), PADDING[o["padding"]],
                    (o["dilationHFactor"], o["dilationWFactor"]))
        b = None if bias is None else bias.data
        if name == "CONV_2D":
            return hostlib.conv(xs[0], w.data, b, q, *geometry)
        return hostlib.depthwise_conv(xs[0], w.data, b, q, o["depthMultiplier"],
                                      *geometry)
    if name == "FULLY_CONNECTED":
        w, bias = op.inputs[1], op.inputs[2] if len(op.inputs) > 2 else None
        prepare = _alt_fc if alt else quant.prepare_fully_connected
        q = prepare(si, zi, w.scales, so, zo, _act(op), int(w.zero_points[0]))
        y = hostlib.fully_connected(xs[0], w.data,
                                    None if bias is None else bias.data, q)
        return y.reshape(out_t.shape)
    if name == "MEAN":
        axes = np.atleast_1d(op.inputs[1].data).tolist()
        n = int(np.prod([t.shape[a] for a in axes]))
        p = (_alt_mean if alt else quant.prepare_mean)(si, zi, so, zo, n)
        return hostlib.mean(xs[0], axes, p, keep_dims=op.options["keepDims"])
    if name == "SUM":
        axes = np.atleast_1d(op.inputs[1].data).tolist()
        n = int(np.prod([t.shape[a] for a in axes]))
        p = (quant.prepare_mean if alt else quant.prepare_sum)(si, zi, so, zo, n)
        return hostlib.mean(xs[0], axes, p, keep_dims=op.options["keepDims"])
    if name == "ABS":
        p = quant.prepare_abs(si, zi, so, zo)
        if alt and p.needs_rescale:
            p = quant.AbsParams(zi, zo, True, _single_ratio(si, so))
        return hostlib.abs_(xs[0], p)
    if name == "RELU":
        p = quant.prepare_relu(si, zi, so, zo)
        if alt:
            p = quant.ReluParams(zi, zo, _single_ratio(si, so), p.activation)
        return hostlib.relu(xs[0], p)
    if name == "QUANTIZE":
        p = quant.prepare_requantize(si, zi, so, zo)
        if alt:
            p = quant.RequantizeParams(zi, zo, _single_ratio(si, so))
        return hostlib.requantize(xs[0], p)
    if name == "LOGISTIC":
        return hostlib.logistic(xs[0], quant.prepare_logistic(si, zi, so, zo))
    if name == "SOFTMAX":
        p = quant.prepare_softmax(si, op.options["beta"], so, zo)
        return hostlib.softmax(xs[0], p)
    if name == "LOG_SOFTMAX":
        return hostlib.log_softmax(xs[0], quant.prepare_log_softmax(si))
    if name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        o = op.options
        padding = PADDING[o["padding"]]
        p = quant.prepare_pool(si, zi, so, zo, t.shape[1:3],
                               (o["filterHeight"], o["filterWidth"]),
                               (o["strideH"], o["strideW"]), padding, _act(op))
        fn = hostlib.avgpool if name == "AVERAGE_POOL_2D" else hostlib.maxpool
        return fn(xs[0], p, padding)
    if name == "RESIZE_BILINEAR":
        from firmware_gen.ops import resize_bilinear
        return hostlib.resize_bilinear(xs[0], resize_bilinear.prepare(op.index, op))
    if name == "RESIZE_NEAREST_NEIGHBOR":
        from firmware_gen.ops import resize
        return hostlib.resize_nearest(xs[0], resize.prepare(op.index, op))
    if name == "STRIDED_SLICE":
        from firmware_gen.ops import strided_slice
        return hostlib.strided_slice(xs[0], strided_slice.prepare(op.index, op), out_t.shape)
    if name == "SLICE":
        from firmware_gen.ops import slice as slice_op
        return hostlib.strided_slice(xs[0], slice_op.prepare(op.index, op), out_t.shape)
    if name == "REDUCE_MAX":
        from firmware_gen.ops import reduce_max
        _, plan = reduce_max.prepare(op.index, op)
        return hostlib.reduce_max(xs[0], *plan).reshape(out_t.shape)
    if name in ("RESHAPE", "EXPAND_DIMS", "SQUEEZE"):
        return hostlib.copy(xs[0]).reshape(out_t.shape)
    raise NotImplementedError(name)


UNARY_LUT_OPS = ("ABS", "RELU", "QUANTIZE", "LOGISTIC")
HAS_ALTERNATIVE = ("ADD", "SUB", "MUL", "CONV_2D", "DEPTHWISE_CONV_2D",
                   "FULLY_CONNECTED", "MEAN", "SUM", "ABS", "RELU", "QUANTIZE")


def check_model(model: bytes, opcodes, seed: int, lut: bool = True,
                draws: int = 4) -> dict:
    """Compare every operator whose opcode is in ``opcodes`` with its dk
    kernel over the four input draws. Returns coverage counters:
    comparisons, outputs at -128 / 127, distinct quantization parameter sets,
    and ``teeth``: comparisons where the wrong parameter derivation
    (run_dk(alt=True)) would have been caught."""
    ops = [op for op in oracle.read_operators(model) if op.opcode in opcodes]
    assert ops, f"the model has no {opcodes} operator"
    stats = {"ops": len(ops), "comparisons": 0, "min_hits": 0, "max_hits": 0,
             "param_sets": set(), "teeth": 0}
    for k, draw in enumerate(input_draws(model, seed)):
        if k >= draws:
            break
        tensors = oracle.run_capture(model, draw)
        for op in ops:
            xs = [None if t is None else
                  (t.data if t.data is not None else tensors[t.index])
                  for t in op.inputs]
            expected = tensors[op.outputs[0].index]
            actual = run_dk(op, xs)
            where = (f"{op.opcode} #{op.index} in={[t.shape for t in op.inputs if t]}"
                     f" scales={[float(t.scale) for t in op.inputs if t and len(t.scales)]}"
                     f" zps={[t.zero_point for t in op.inputs if t and len(t.zero_points)]}"
                     f" out=({float(op.outputs[0].scale)}, {op.outputs[0].zero_point})"
                     f" options={op.options}")
            assert actual.shape == expected.shape, where
            if not np.array_equal(actual, expected):
                diff = np.abs(actual.astype(int) - expected.astype(int))
                raise AssertionError(f"{where}: {np.count_nonzero(diff)} of "
                                     f"{diff.size} outputs differ (max {diff.max()})")
            if lut and op.opcode in UNARY_LUT_OPS:
                table = hostlib.unary_lut(lambda v, op=op: run_dk(op, [v]))
                assert np.array_equal(hostlib.lut(xs[0], table), expected), where
            if op.opcode in HAS_ALTERNATIVE:
                stats["teeth"] += int(not np.array_equal(run_dk(op, xs, alt=True),
                                                         expected))
            stats["comparisons"] += 1
            stats["min_hits"] += int(np.count_nonzero(expected == -128))
            stats["max_hits"] += int(np.count_nonzero(expected == 127))
            stats["param_sets"].add(tuple((float(t.scale), t.zero_point)
                                          for t in op.inputs + op.outputs
                                          if t is not None and len(t.scales) == 1))
    return stats


@functools.lru_cache(maxsize=None)
def model_for(family: str, seed: int, **kwargs) -> bytes:
    """Converted models are cached for the session (tests and helpers that
    look at the same family share one conversion)."""
    return FAMILIES[family](np.random.default_rng(seed), seed, **kwargs)


# ------------------------------------------------------------ families -----


def conv_family(rng, seed):
    branches = []
    for k in range(8):
        length = int(rng.integers(6, 40))
        cin, cout = int(rng.integers(1, 9)), int(rng.integers(1, 13))
        ksize = int(rng.choice([1, 3, 5, 7]))
        stride = int(rng.choice([1, 2]))
        padding = str(rng.choice(["SAME", "VALID"]))
        if padding == "VALID" and length < ksize:
            length = ksize + 2
        relu = bool(rng.integers(0, 2))
        w = (rng.normal(size=(ksize, cin, cout))
             * np.exp(rng.uniform(-2, 1, size=cout))).astype(np.float32)
        b = rng.normal(scale=0.5, size=cout).astype(np.float32)

        def fn(x, w=w, b=b, stride=stride, padding=padding, relu=relu):
            y = tf.nn.conv1d(x, w, stride=stride, padding=padding) + b
            return tf.nn.relu(y) if relu else y
        branches.append(([((1, length, cin), *random_range(rng))], fn))
    # General 2-D cases: 3x3 kernels, dilation, unequal strides, groups.
    for k in range(3):
        h, wd = int(rng.integers(4, 9)), int(rng.integers(4, 12))
        cin = int(rng.choice([2, 4]))
        groups = 2 if k == 2 else 1
        cout = 2 * int(rng.integers(1, 4))
        w = rng.normal(size=(3, 3, cin // groups, cout)).astype(np.float32)
        strides = [(1, 1), (2, 1), (1, 2)][k]
        dil = (2, 1) if k == 0 else (1, 1)

        def fn(x, w=w, strides=strides, dil=dil):
            return tf.nn.conv2d(x, w, strides=strides, padding="SAME",
                                dilations=dil)
        branches.append(([((1, h, wd, cin), *random_range(rng))], fn))
    return convert(branches, seed)


def depthwise_family(rng, seed):
    branches = []
    for k in range(6):
        length, c = int(rng.integers(6, 30)), int(rng.integers(1, 9))
        mult = int(rng.choice([1, 2]))
        ksize = int(rng.choice([3, 5]))
        stride = int(rng.choice([1, 2]))
        padding = str(rng.choice(["SAME", "VALID"]))
        w = rng.normal(size=(1, ksize, c, mult)).astype(np.float32)
        b = rng.normal(size=c * mult).astype(np.float32)

        def fn(x, w=w, b=b, stride=stride, padding=padding):
            return tf.nn.relu(tf.nn.depthwise_conv2d(
                x, w, strides=[1, 1, stride, 1], padding=padding) + b)
        branches.append(([((1, 1, length, c), *random_range(rng))], fn))
    return convert(branches, seed)


def fc_family(rng, seed, per_channel=True):
    branches = []
    for k in range(8):
        batch = int(rng.choice([1, 1, 3]))
        depth, units = int(rng.integers(2, 33)), int(rng.integers(1, 17))
        w = (rng.normal(size=(depth, units))
             * np.exp(rng.uniform(-2, 1, size=units))).astype(np.float32)
        b = rng.normal(size=units).astype(np.float32)
        relu = bool(rng.integers(0, 2))

        def fn(x, w=w, b=b, relu=relu):
            y = tf.matmul(x, w) + b
            return tf.nn.relu(y) if relu else y
        branches.append(([((batch, depth), *random_range(rng))], fn))
    return convert(branches, seed, per_channel_dense=per_channel)


def _binary_shapes(rng):
    """Operand shapes as a DRSN produces them: same shape, per-channel
    broadcast either way, 2-D, and a scalar constant."""
    length, c = int(rng.integers(2, 24)), int(rng.integers(1, 9))
    return [
        ((1, length, c), (1, length, c)),
        ((1, length, c), (1, 1, c)),
        ((1, 1, c), (1, length, c)),
        ((1, c), (1, c)),
        ((1, length, c), (1, c)),
        ((1, 1, length, c), (1, 1, 1, c)),
    ]


def binary_family(rng, seed, op=None):
    branches = []
    shapes = _binary_shapes(rng)
    for k, (sa, sb) in enumerate(shapes + shapes[:2]):
        relu = k % 3 == 1
        narrow = k >= len(shapes)  # force clipping with a narrow output range
        top = float(rng.uniform(0.2, 3.0))

        def fn(a, b, relu=relu, narrow=narrow, top=top):
            y = op(a, b)
            if relu:
                # Pin the range: with few calibration samples a fused ReLU's
                # output could otherwise calibrate to the empty range [0, 0].
                y = fake_quant(tf.nn.relu(y), min=0.0, max=top)
            if narrow:
                y = fake_quant(y, min=-0.4, max=0.3)
            return y
        branches.append(([(sa, *random_range(rng)), (sb, *random_range(rng))], fn))

    # Every pair of int8 values: [1, 256, 1] op [1, 1, 256].
    for k in range(4):
        def fn(a, b, relu=k == 3):
            y = op(a, b)
            return fake_quant(tf.nn.relu(y), min=0.0, max=1.0) if relu else y
        branches.append(([((1, 256, 1), *random_range(rng)),
                          ((1, 1, 256), *random_range(rng))], fn))

    # A constant operand (e.g. `0.0 - r`, `r + 0.5`, `2.0 * r`).
    def const_fn(a):
        return [op(0.0, a), op(a, 0.5)]
    branches.append(([((1, 7, 3), *random_range(rng))], const_fn))
    return convert(branches, seed)


def minmax_family(rng, seed):
    branches = []
    for k, (sa, sb) in enumerate(_binary_shapes(rng)):
        fn_op = tf.minimum if k % 2 == 0 else tf.maximum

        def fn(a, b, fn_op=fn_op):
            return fn_op(a, b)
        branches.append(([(sa, *random_range(rng)), (sb, *random_range(rng))], fn))

    def shrink(r, tau):  # the DRSN form: minimum(r + tau, 0)
        return tf.minimum(r + tau, 0.0)
    branches.append(([((1, 9, 4), *random_range(rng)), ((1, 1, 4), 0.0, 1.0)],
                     shrink))
    return convert(branches, seed)


def unary_family(rng, seed):
    """ABS, MEAN (keep_dims both ways, 3-D and 4-D), RELU, LOGISTIC."""
    branches = []
    for k in range(6):
        length, c = int(rng.integers(2, 40)), int(rng.integers(1, 9))
        if k >= 4:
            length, c = 256, 1   # every int8 value once
        lo, hi = random_range(rng, 0.1, 40.0)

        def fn(x, k=k):
            r = tf.abs(x)
            a = tf.reduce_mean(r, axis=1, keepdims=k % 2 == 0)
            m = tf.reduce_mean(x, axis=1, keepdims=k % 2 == 1)
            return [r, a, m, tf.nn.relu(x), tf.sigmoid(x), tf.sigmoid(a)]
        branches.append(([((1, length, c), lo, hi)], fn))

    def fn4(x):
        return tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    branches.append(([((1, 1, 12, 5), -2.0, 3.0)], fn4))

    def batched(x):  # outer > 1 in the [outer, reduce, inner] view
        return tf.reduce_mean(x, axis=1)
    branches.append(([((3, 10, 4), -1.0, 2.5)], batched))

    def same_scale_abs(x):  # |x| needs no rescale: both scales are 2/255
        return fake_quant(tf.abs(fake_quant(x, min=-1.0, max=1.0)), min=0.0, max=2.0)
    branches.append(([((1, 256, 1), -1.0, 1.0)], same_scale_abs))

    def relu_into_wider_range(x):  # output zero point above -128: clamp matters
        return fake_quant(tf.nn.relu(fake_quant(x, min=-2.0, max=2.0)),
                          min=-0.5, max=1.0)
    branches.append(([((1, 256, 1), -2.0, 2.0)], relu_into_wider_range))
    return convert(branches, seed)


def logistic_family(rng, seed):
    branches = []
    for k in range(8):
        n = 256 if k % 2 else int(rng.integers(4, 64))
        width = [0.5, 4.0, 16.0, 60.0, 300.0][k % 5]
        centre = rng.uniform(-0.5, 0.5) * width

        def fn(x):
            return tf.sigmoid(x)
        branches.append(([((1, n), centre - width / 2, centre + width / 2)], fn))
    return convert(branches, seed)


def softmax_family(rng, seed):
    branches = []
    for k in range(8):
        rows, n = int(rng.choice([1, 1, 3])), int(rng.integers(2, 40))
        width = [1.0, 6.0, 20.0, 80.0][k % 4]

        def fn(x):
            return tf.nn.softmax(x)
        branches.append(([((rows, n), -width / 2, width / 2 * rng.uniform(0.3, 1.0))],
                         fn))
    return convert(branches, seed)


def log_softmax_family(rng, seed):
    """LOG_SOFTMAX over rows of 2..64 values, input ranges narrow to wide (at wide ones
    most differences fall below the threshold and give -128)."""
    branches = []
    for k in range(8):
        rows, n = int(rng.choice([1, 1, 3])), int(rng.integers(2, 64))
        width = [0.5, 3.0, 12.0, 40.0, 150.0][k % 5]

        def fn(x):
            return tf.nn.log_softmax(x)
        branches.append(([((rows, n), -width / 2, width / 2 * rng.uniform(0.3, 1.0))], fn))
    return convert(branches, seed)


def quantize_family(rng, seed):
    """A fixed-scale LOGISTIC output feeding MINIMUM forces a QUANTIZE
    (int8 -> int8 requantization) into the graph."""
    branches = []
    for k in range(6):
        shape = (1, int(rng.integers(2, 30)), int(rng.integers(1, 6)))
        if k % 2:
            shape = (1, 256, 1)

        def fn(a, b):
            return tf.minimum(a, tf.sigmoid(b))
        branches.append(([(shape, *random_range(rng, 0.05, 5.0)),
                          (shape, *random_range(rng))], fn))
    return convert(branches, seed)


def resize_family(rng, seed):
    """RESIZE_NEAREST_NEIGHBOR up and down, square and not, with each of TFLM's index
    rules (plain floor, align_corners, half_pixel_centers)."""
    branches = []
    for k in range(9):
        ac, hp = [(False, False), (True, False), (False, True)][k % 3]
        h, w, c = int(rng.integers(1, 9)), int(rng.integers(2, 9)), int(rng.integers(1, 4))
        size = (int(rng.integers(1, 3 * h + 2)), int(rng.integers(1, 3 * w + 2)))

        def fn(x, size=size, ac=ac, hp=hp):
            return tf.compat.v1.image.resize_nearest_neighbor(x, size, align_corners=ac,
                                                              half_pixel_centers=hp)
        branches.append(([((1, h, w, c), *random_range(rng))], fn))
    return convert(branches, seed)


def resize_bilinear_family(rng, seed):
    """RESIZE_BILINEAR up and down, square and not, with each of TFLM's rules (plain,
    align_corners, half_pixel_centers: the Keras Resizing / UpSampling2D default)."""
    branches = []
    for k in range(12):
        ac, hp = [(False, False), (True, False), (False, True)][k % 3]
        h, w, c = int(rng.integers(1, 9)), int(rng.integers(2, 9)), int(rng.integers(1, 4))
        size = (int(rng.integers(1, 3 * h + 2)), int(rng.integers(1, 3 * w + 2)))

        def fn(x, size=size, ac=ac, hp=hp):
            return tf.compat.v1.image.resize_bilinear(x, size, align_corners=ac, half_pixel_centers=hp)
        branches.append(([((1, h, w, c), *random_range(rng))], fn))
    return convert(branches, seed)


# Slices of a [1, 7, 6, 5] tensor: strides, negative indices, reversed axes, masks (an
# omitted bound), shrunk axes (an integer index), and ranges clamped to the axis.
SLICES = [
    lambda x: x[:, 1:6:2, :, 1:4],
    lambda x: x[:, ::-1, 1:5, :],
    lambda x: x[:, -3:, ::-2, 2],
    lambda x: x[:, 2, 1:-1, ::3],
    lambda x: x[:, 0:100, -100:4, 4:0:-1],
    lambda x: x[:, 6:0:-3, 5, :],
    lambda x: x[:, 1:2, 3:4, :],
    lambda x: x[0, 3:, :, 1:],
]


def strided_slice_family(rng, seed):
    branches = []
    for k, cut in enumerate(SLICES):
        def fn(x, cut=cut):
            return cut(x) * 1.0     # the slice stays an op of its own (not the graph input)
        branches.append(([((1, 7, 6, 5), *random_range(rng))], fn))
    return convert(branches, seed)


# tf.slice windows (begin, size; -1: to the end) of a [1, 7, 6, 5] input
SLICE_WINDOWS = [
    ([0, 1, 2, 0], [1, 5, 3, 5]),
    ([0, 0, 0, 2], [1, -1, -1, 2]),
    ([0, 6, 5, 4], [1, 1, 1, 1]),
    ([0, 2, 0, 0], [1, 3, -1, -1]),
    ([0, 0, 1, 1], [-1, 7, 4, 3]),
]


def slice_family(rng, seed):
    branches = []
    for begin, size in SLICE_WINDOWS:
        def fn(x, begin=begin, size=size):
            return tf.slice(x * 1.0, begin, size)    # * 1.0: the slice is not of the graph input
        branches.append(([((1, 7, 6, 5), *random_range(rng))], fn))
    return convert(branches, seed)


# tf.split of a [1, 6, 8, 4] input: (parts or sizes, axis)
SPLITS = [(2, 1), (4, 2), ([1, 2, 1], 3), ([3, 1, 2], 1), ([5, 3], -2), (1, 3)]


def split_family(rng, seed):
    branches = []
    for parts, axis in SPLITS:
        def fn(x, parts=parts, axis=axis):
            return [p * 1.0 for p in tf.split(x * 1.0, parts, axis=axis)]
        branches.append(([((1, 6, 8, 4), *random_range(rng))], fn))
    return convert(branches, seed)


def unpack_family(rng, seed):
    """tf.unstack along every axis of a rank-4 tensor (a negative one too), on random shapes;
    the outputs are multiplied by 1 so that each stays a tensor of its own."""
    branches = []
    for axis in (1, 2, 3, -2):
        shape = (1, int(rng.integers(2, 6)), int(rng.integers(2, 6)), int(rng.integers(2, 5)))

        def fn(x, axis=axis):
            return [p * 1.0 for p in tf.unstack(x * 1.0, axis=axis)]
        branches.append(([(shape, *random_range(rng))], fn))
    return convert(branches, seed)


def copies_family(rng, seed):
    """tf.gather with constant indices (repeated, reordered) along each axis, of rank 2 to 5,
    and tf.pad REFLECT / SYMMETRIC of ranks 2 to 4 with paddings up to the most each mode
    allows."""
    branches = []
    for axis, rank in ((1, 3), (2, 4), (3, 4), (-1, 2), (2, 5)):
        shape = (1, *[int(rng.integers(2, 6)) for _ in range(rank - 1)])
        # the rank-5 input takes a 2-D index array: six output axes, five above 1, merged to four
        idx = rng.integers(0, shape[axis], size=(2, 3) if rank == 5 else int(rng.integers(1, 7))).tolist()

        def fn(x, axis=axis, idx=idx):
            return tf.gather(x * 1.0, idx, axis=axis) * 1.0
        branches.append(([(shape, *random_range(rng))], fn))
    for mode, rank in (("REFLECT", 4), ("SYMMETRIC", 4), ("REFLECT", 3), ("SYMMETRIC", 2)):
        shape = (1, *[int(rng.integers(2, 7)) for _ in range(rank - 1)])
        most = [s - (mode == "REFLECT") for s in shape]
        pads = [[0, 0]] + [[int(rng.integers(0, m + 1)), int(rng.integers(0, m + 1))] for m in most[1:]]

        def fn(x, mode=mode, pads=pads):
            return tf.pad(x * 1.0, pads, mode=mode) * 1.0
        branches.append(([(shape, *random_range(rng))], fn))
    return convert(branches, seed)


def depth_space_family(rng, seed):
    """tf.nn.depth_to_space and space_to_depth with block sizes 2 and 3 on random shapes."""
    branches = []
    for b in (2, 3):
        h, w, c = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
        branches.append(([((1, h, w, c * b * b), *random_range(rng))],
                         lambda x, b=b: tf.nn.depth_to_space(x * 1.0, b) * 1.0))
        branches.append(([((1, h * b, w * b, c), *random_range(rng))],
                         lambda x, b=b: tf.nn.space_to_depth(x * 1.0, b) * 1.0))
    return convert(branches, seed)


def l2_normalization_family(rng, seed):
    """tf.math.l2_normalize over the last axis of ranks 2 to 4, depths 1 to 300 (sums of
    squares up to millions), on random ranges."""
    branches = []
    for k, depth in enumerate((1, 3, 16, 64, 300)):
        shape = [(1, depth), (1, 5, depth), (1, 3, 2, depth)][k % 3]

        def fn(x):
            return tf.math.l2_normalize(x * 1.0, axis=-1) * 1.0
        branches.append(([(shape, *random_range(rng))], fn))
    return convert(branches, seed)


def reduce_max_family(rng, seed):
    """tf.reduce_max over rows, over rows and columns (GlobalMaxPooling2D), over channels,
    keep_dims either way, on random shapes."""
    branches = []
    for k in range(8):
        shape = (1, int(rng.integers(1, 9)), int(rng.integers(2, 9)), int(rng.integers(1, 6)))
        axes = [[1], [1, 2], [3], [2]][k % 4]
        keep = bool(k % 2)

        def fn(x, axes=axes, keep=keep):
            return tf.reduce_max(x * 1.0, axis=axes, keepdims=keep)
        branches.append(([(shape, *random_range(rng))], fn))
    return convert(branches, seed)


def sum_family(rng, seed):
    """SUM over time, over channels, over both, keep_dims either way (the extreme input
    draws saturate the outputs calibrated on uniform data)."""
    branches = []
    for k in range(9):
        shape = (1, int(rng.integers(2, 40)), int(rng.integers(2, 9)))
        axes = [[1], [2], [1, 2]][k % 3]
        keep = bool(k % 2)

        def fn(x, axes=axes, keep=keep):
            return tf.reduce_sum(x, axis=axes, keepdims=keep)
        branches.append(([(shape, *random_range(rng, 0.2, 6.0))], fn))
    return convert(branches, seed)


def transpose_conv_family(rng, seed):
    """Conv2DTranspose as Keras builds it: strides 1-3, kernels 1-4 (smaller, equal and
    larger than the stride), SAME and VALID, with and without bias."""
    branches = []
    for k in range(6):
        h, w, c = int(rng.integers(2, 7)), int(rng.integers(2, 7)), int(rng.integers(1, 5))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        kernel = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        oc, pad = int(rng.integers(1, 6)), ["SAME", "VALID"][k % 2]
        out_hw = [n * s if pad == "SAME" else n * s + max(kk - s, 0)
                  for n, s, kk in zip((h, w), stride, kernel)]
        filt = tf.constant(rng.normal(0, 0.5, size=(*kernel, oc, c)).astype(np.float32))
        bias = tf.constant(rng.uniform(-0.5, 0.5, size=oc).astype(np.float32))

        def fn(x, filt=filt, bias=bias, stride=stride, pad=pad, out_hw=out_hw, oc=oc, k=k):
            y = tf.nn.conv2d_transpose(x, filt, (1, *out_hw, oc), stride, padding=pad)
            return y if k % 3 == 2 else tf.nn.bias_add(y, bias)
        branches.append(([((1, h, w, c), *random_range(rng))], fn))
    return convert(branches, seed)


def pool_family(rng, seed):
    branches = []
    for k in range(8):
        length, c = int(rng.integers(4, 30)), int(rng.integers(1, 8))
        ksize, stride = int(rng.choice([2, 3, 4])), int(rng.choice([1, 2]))
        padding = ["SAME", "VALID"][k % 2]
        pool = tf.nn.avg_pool2d if k < 5 else tf.nn.max_pool2d

        def fn(x, pool=pool, ksize=ksize, stride=stride, padding=padding):
            return pool(x, ksize=(1, ksize), strides=(1, stride), padding=padding)
        branches.append(([((1, 1, length, c), *random_range(rng))], fn))
    return convert(branches, seed)


def exhaustive_pairs_family(rng, seed):
    """Many [1, 256, 1] op [1, 1, 256] branches for ADD and SUB: every pair
    of int8 inputs under 40 random quantizations each."""
    branches = []
    for op in (tf.add, tf.subtract):
        for k in range(40):
            def fn(a, b, op=op):
                return op(a, b)
            branches.append(([((1, 256, 1), *random_range(rng)),
                              ((1, 1, 256), *random_range(rng))], fn))
    return convert(branches, seed)


# Quantization ranges (pinned with fake-quant; float32 values, as fake-quant
# takes them) found by an offline search of the converter's scale arithmetic:
# for these, the single-precision ratio of older TFLM sources and the
# double-precision ratio of the pinned build give different multipliers that
# change at least one output.
# (input min, input max, output max) for ABS / RELU:
PRECISION_UNARY_RANGES = [
    (-3.3324084, 7.336788, 7.605764),
    (-1.1725392, 3.1038983, 3.3558962),
    (-1.3304279, 4.6924877, 6.5126915),
    (-3.9134066, 3.690296, 6.5748186),
    (-6.039256, 2.6843617, 5.5858736),
    (-2.2505982, 1.3909433, 2.62547),
]
# (input min, input max, weight, output min, output max) for a 1x1 per-tensor
# FULLY_CONNECTED:
PRECISION_FC_RANGES = [
    (-0.5460487, 1.1544912, 0.65668476, -16.997337, 23.206495),
    (-1.1654415, 6.3284273, 1.9306878, -0.4192829, 28.519556),
    (-6.672623, 4.093557, 1.7680538, -5.3662467, 24.43808),
    (-3.3407607, 7.577982, 2.9409344, -12.277653, 0.65907246),
    (-5.2064085, 4.599373, 2.7380981, -11.405904, 28.102842),
    (-2.5622704, 0.7101972, 1.4328114, -18.354065, 8.234963),
    (-4.8072314, 7.484116, 1.3684227, -16.488008, 23.628408),
    (-4.701117, 1.7791352, 2.1711729, -9.970198, 16.616856),
]

# (input min, input max, output min, output max, n) for MEAN over n steps,
# where TFLM's truncated 1/n folding and an exactly rounded 1/n differ:
PRECISION_MEAN_RANGES = [
    (-0.20764986, 0.58519685, -0.2148887, 1.2542075, 5),
    (-2.3109274, 3.3125334, -2.3672955, 2.2028787, 6),
    (-0.9934827, 2.1571918, -2.6843705, 3.1558306, 3),
    (-1.8909289, 1.8427502, -3.7512252, 2.5688994, 5),
    (-1.9615533, 3.0145905, -3.409791, 3.2803106, 6),
    (-1.2736852, 3.1505167, -3.2354512, 3.211433, 6),
]


def precision_family(rng, seed):
    branches = []
    for lo, hi, top in PRECISION_UNARY_RANGES:
        def fn(x, lo=lo, hi=hi, top=top):
            x = fake_quant(x, min=lo, max=hi)
            return [fake_quant(tf.abs(x), min=0.0, max=top),
                    fake_quant(tf.nn.relu(x), min=0.0, max=top)]
        branches.append(([((1, 256, 1), lo, hi)], fn))
    for lo, hi, w, out_lo, out_hi in PRECISION_FC_RANGES:
        def fn(x, lo=lo, hi=hi, w=np.array([[w]], np.float32), a=out_lo, b=out_hi):
            return fake_quant(tf.matmul(fake_quant(x, min=lo, max=hi), w),
                              min=a, max=b)
        branches.append(([((256, 1), lo, hi)], fn))
    for lo, hi, out_lo, out_hi, n in PRECISION_MEAN_RANGES:
        def fn(x, lo=lo, hi=hi, a=out_lo, b=out_hi):
            return fake_quant(tf.reduce_mean(fake_quant(x, min=lo, max=hi), axis=1),
                              min=a, max=b)
        branches.append(([((1, n, 256), lo, hi)], fn))
    return convert(branches, seed, per_channel_dense=False)


FAMILIES = {
    "conv": conv_family,
    "depthwise": depthwise_family,
    "fc": fc_family,
    "add": functools.partial(binary_family, op=lambda a, b: a + b),
    "sub": functools.partial(binary_family, op=lambda a, b: a - b),
    "mul": functools.partial(binary_family, op=lambda a, b: a * b),
    "squared_difference": functools.partial(binary_family, op=tf.math.squared_difference),
    "minmax": minmax_family,
    "unary": unary_family,
    "logistic": logistic_family,
    "softmax": softmax_family,
    "log_softmax": log_softmax_family,
    "quantize": quantize_family,
    "pool": pool_family,
    "resize": resize_family,
    "strided_slice": strided_slice_family,
    "sum": sum_family,
    "slice": slice_family,
    "reduce_max": reduce_max_family,
    "split": split_family,
    "unpack": unpack_family,
    "copies": copies_family,
    "l2_normalization": l2_normalization_family,
    "depth_space": depth_space_family,
    "resize_bilinear": resize_bilinear_family,
    "transpose_conv": transpose_conv_family,
    "exhaustive_pairs": exhaustive_pairs_family,
    "precision": precision_family,
}

SEEDS = (11, 29)


# --------------------------------------------------------------- tests -----


@pytest.mark.parametrize("seed", SEEDS)
def test_conv2d_matches_tflm_on_conv1d_and_2d_kernels(seed):
    stats = check_model(model_for("conv", seed), {"CONV_2D"}, seed)
    assert stats["ops"] == 11
    assert stats["min_hits"] and stats["max_hits"]


@pytest.mark.parametrize("seed", SEEDS)
def test_conv1d_reshapes_around_conv2d_are_plain_copies(seed):
    stats = check_model(model_for("conv", seed),
                        {"RESHAPE", "EXPAND_DIMS", "SQUEEZE"}, seed)
    assert stats["ops"] >= 16


@pytest.mark.parametrize("seed", SEEDS)
def test_depthwise_conv2d_matches_tflm(seed):
    stats = check_model(model_for("depthwise", seed), {"DEPTHWISE_CONV_2D"}, seed)
    assert stats["ops"] == 6


@pytest.mark.parametrize("seed", SEEDS)
def test_fully_connected_per_channel_weights_match_tflm(seed):
    model = model_for("fc", seed, per_channel=True)
    fcs = [op for op in oracle.read_operators(model) if op.opcode == "FULLY_CONNECTED"]
    assert any(len(op.inputs[1].scales) > 1 for op in fcs)
    stats = check_model(model, {"FULLY_CONNECTED"}, seed)
    assert stats["ops"] == 8 and stats["min_hits"] and stats["max_hits"]


@pytest.mark.parametrize("seed", SEEDS)
def test_fully_connected_per_tensor_weights_match_tflm(seed):
    model = model_for("fc", seed, per_channel=False)
    fcs = [op for op in oracle.read_operators(model) if op.opcode == "FULLY_CONNECTED"]
    assert all(len(op.inputs[1].scales) == 1 for op in fcs)
    stats = check_model(model, {"FULLY_CONNECTED"}, seed)
    assert stats["ops"] == 8


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("family,opcode", [("add", "ADD"), ("sub", "SUB"),
                                           ("mul", "MUL")])
def test_broadcasting_binary_op_matches_tflm(family, opcode, seed):
    stats = check_model(model_for(family, seed), {opcode}, seed)
    assert stats["ops"] >= 9
    assert len(stats["param_sets"]) >= 8
    assert stats["min_hits"] and stats["max_hits"]


@pytest.mark.parametrize("seed", SEEDS)
def test_squared_difference_matches_tflm(seed):
    """Broadcast shapes, every pair of int8 values ([1, 256, 1] against [1, 1, 256]), inputs
    of different scales and a narrow output range that clips."""
    stats = check_model(model_for("squared_difference", seed), {"SQUARED_DIFFERENCE"}, seed)
    assert stats["ops"] >= 9 and len(stats["param_sets"]) >= 8
    assert stats["max_hits"]


@pytest.mark.parametrize("seed", SEEDS)
def test_minimum_and_maximum_match_tflm(seed):
    model = model_for("minmax", seed)
    stats = check_model(model, {"MINIMUM", "MAXIMUM"}, seed)
    assert stats["ops"] >= 6


@pytest.mark.parametrize("seed", SEEDS)
def test_abs_matches_tflm_with_and_without_rescaling(seed):
    model = model_for("unary", seed)
    abs_ops = [op for op in oracle.read_operators(model) if op.opcode == "ABS"]
    assert {bool(op.inputs[0].scale != op.outputs[0].scale) for op in abs_ops} == {
        True, False}
    stats = check_model(model, {"ABS"}, seed)
    assert stats["ops"] == 7


@pytest.mark.parametrize("seed", SEEDS)
def test_mean_over_time_axis_matches_tflm(seed):
    model = model_for("unary", seed)
    means = [op for op in oracle.read_operators(model) if op.opcode == "MEAN"]
    assert {op.options["keepDims"] for op in means} == {True, False}
    stats = check_model(model, {"MEAN"}, seed)
    assert stats["ops"] == 14 and stats["min_hits"] and stats["max_hits"]


@pytest.mark.parametrize("seed", SEEDS)
def test_standalone_relu_matches_tflm(seed):
    model = model_for("unary", seed)
    relus = [op for op in oracle.read_operators(model) if op.opcode == "RELU"]
    assert any(op.outputs[0].zero_point > -128 for op in relus)
    stats = check_model(model, {"RELU"}, seed)
    assert stats["ops"] == 7


@pytest.mark.parametrize("seed", SEEDS)
def test_logistic_matches_tflm_including_saturated_inputs(seed):
    stats = check_model(model_for("logistic", seed), {"LOGISTIC"}, seed)
    stats_u = check_model(model_for("unary", seed), {"LOGISTIC"}, seed)
    assert stats["ops"] + stats_u["ops"] == 20
    assert stats["min_hits"] and stats["max_hits"]


@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_matches_tflm(seed):
    stats = check_model(model_for("softmax", seed), {"SOFTMAX"}, seed)
    assert stats["ops"] == 8


@pytest.mark.parametrize("seed", SEEDS)
def test_log_softmax_matches_tflm(seed):
    stats = check_model(model_for("log_softmax", seed), {"LOG_SOFTMAX"}, seed)
    assert stats["ops"] == 8 and stats["min_hits"] and stats["max_hits"]


@pytest.mark.parametrize("seed", SEEDS)
def test_int8_requantize_matches_tflm(seed):
    stats = check_model(model_for("quantize", seed), {"QUANTIZE"}, seed)
    assert stats["ops"] == 6


@pytest.mark.parametrize("seed", SEEDS)
def test_resize_bilinear_matches_tflm(seed):
    stats = check_model(model_for("resize_bilinear", seed), {"RESIZE_BILINEAR"}, seed)
    assert stats["ops"] == 12 and stats["min_hits"] and stats["max_hits"]
    ops = [op for op in oracle.read_operators(model_for("resize_bilinear", seed))
           if op.opcode == "RESIZE_BILINEAR"]
    rules = {(op.options.get("alignCorners", False), op.options.get("halfPixelCenters", False))
             for op in ops}
    assert rules == {(False, False), (True, False), (False, True)}, rules


@pytest.mark.parametrize("seed", SEEDS)
def test_resize_nearest_neighbor_matches_tflm(seed):
    stats = check_model(model_for("resize", seed), {"RESIZE_NEAREST_NEIGHBOR"}, seed)
    assert stats["ops"] == 9
    ops = [op for op in oracle.read_operators(model_for("resize", seed))
           if op.opcode == "RESIZE_NEAREST_NEIGHBOR"]
    rules = {(op.options.get("alignCorners", False), op.options.get("halfPixelCenters", False))
             for op in ops}
    assert rules == {(False, False), (True, False), (False, True)}, rules


@pytest.mark.parametrize("seed", SEEDS)
def test_strided_slice_matches_tflm(seed):
    stats = check_model(model_for("strided_slice", seed), {"STRIDED_SLICE"}, seed)
    assert stats["ops"] == len(SLICES)
    ops = [op for op in oracle.read_operators(model_for("strided_slice", seed))
           if op.opcode == "STRIDED_SLICE"]
    assert any(op.options.get("shrinkAxisMask") for op in ops)
    assert any(op.options.get("beginMask") or op.options.get("endMask") for op in ops)
    assert any((np.asarray(op.inputs[3].data) < 0).any() for op in ops)


@pytest.mark.parametrize("seed", SEEDS)
def test_slice_matches_tflm(seed):
    stats = check_model(model_for("slice", seed), {"SLICE"}, seed)
    assert stats["ops"] == len(SLICE_WINDOWS)
    sizes = [np.asarray(op.inputs[2].data) for op in oracle.read_operators(model_for("slice", seed))
             if op.opcode == "SLICE"]
    assert len(sizes) == len(SLICE_WINDOWS)


@pytest.mark.parametrize("seed", SEEDS)
def test_split_matches_tflm_on_every_output(seed):
    """SPLIT (equal parts) and SPLIT_V (given sizes, a negative axis): every output of
    every op, one STRIDED_SLICE plan each, against TFLM's tensors."""
    from firmware_gen.ops import split
    model = model_for("split", seed)
    ops = [op for op in oracle.read_operators(model) if op.opcode in ("SPLIT", "SPLIT_V")]
    assert {op.opcode for op in ops} == {"SPLIT", "SPLIT_V"}
    compared = 0
    for draw in list(input_draws(model, seed))[:2]:
        tensors = oracle.run_capture(model, draw)
        for op in ops:
            x = tensors[split.data_input(op).index]
            for y, p in zip(op.outputs, split.prepare(op.index, op)):
                got = hostlib.strided_slice(x, p, y.shape)
                assert np.array_equal(got, tensors[y.index]), (op.opcode, op.index, y.shape)
                compared += 1
    assert compared == 2 * sum(len(op.outputs) for op in ops) >= 2 * 12


@pytest.mark.parametrize("seed", SEEDS)
def test_unpack_matches_tflm_on_every_output(seed):
    """UNPACK along each axis: every output of every op, one STRIDED_SLICE plan each (the
    axis shrunk), against TFLM's tensors."""
    from firmware_gen.ops import unpack
    model = model_for("unpack", seed)
    ops = [op for op in oracle.read_operators(model) if op.opcode == "UNPACK"]
    assert len(ops) == 4 and {op.options["axis"] % 4 for op in ops} >= {1, 2, 3}
    compared = varied = 0
    for draw in list(input_draws(model, seed))[:2]:
        tensors = oracle.run_capture(model, draw)
        for op in ops:
            x = tensors[op.inputs[0].index]
            for y, p in zip(op.outputs, unpack.prepare(op.index, op)[1]):
                got = hostlib.strided_slice(x, p, y.shape)
                assert np.array_equal(got, tensors[y.index]), (op.index, y.shape)
                compared += 1
                varied += len(np.unique(got)) > 1
    assert compared == 2 * sum(len(op.outputs) for op in ops) >= 2 * 8
    assert varied > compared // 2            # most outputs are not one value repeated


@pytest.mark.parametrize("seed", SEEDS)
def test_gather_and_mirror_pad_match_tflm(seed):
    """GATHER (constant indices, any axis, ranks 2 to 5, a 2-D index array: more than four
    output axes merge) and
    MIRROR_PAD (REFLECT and SYMMETRIC, paddings up to the limit) through dk_index_map_s8,
    against TFLM's tensors."""
    from firmware_gen.ops import gather, mirror_pad
    model = model_for("copies", seed)
    ops = [op for op in oracle.read_operators(model) if op.opcode in ("GATHER", "MIRROR_PAD")]
    assert [op.opcode for op in ops].count("GATHER") == 5 and [op.opcode for op in ops].count("MIRROR_PAD") == 4
    assert {op.options["mode"] for op in ops if op.opcode == "MIRROR_PAD"} == {0, 1}
    assert max(len(op.outputs[0].shape) for op in ops) == 6
    compared = 0
    for draw in list(input_draws(model, seed))[:2]:
        tensors = oracle.run_capture(model, draw)
        for op in ops:
            unit = gather if op.opcode == "GATHER" else mirror_pad
            y = op.outputs[0]
            got = hostlib.index_map(tensors[op.inputs[0].index], *unit.prepare(op.index, op), y.shape)
            assert np.array_equal(got, tensors[y.index]), (op.opcode, op.index, op.inputs[0].shape, y.shape)
            compared += 1
    assert compared == 2 * len(ops)


@pytest.mark.parametrize("seed", SEEDS)
def test_depth_to_space_and_back_match_tflm(seed):
    """DEPTH_TO_SPACE and SPACE_TO_DEPTH, block sizes 2 and 3, through dk_index_map_s8
    against TFLM's tensors; every output byte is one of the input's, each input byte used
    once (a permutation)."""
    from firmware_gen.ops import depth_to_space
    model = model_for("depth_space", seed)
    ops = [op for op in oracle.read_operators(model) if op.opcode in ("DEPTH_TO_SPACE", "SPACE_TO_DEPTH")]
    assert sorted(op.opcode for op in ops) == ["DEPTH_TO_SPACE"] * 2 + ["SPACE_TO_DEPTH"] * 2
    for draw in list(input_draws(model, seed))[:2]:
        tensors = oracle.run_capture(model, draw)
        for op in ops:
            y = op.outputs[0]
            dims, tables = depth_to_space.prepare(op.index, op)
            flat = np.add.outer(np.add.outer(tables[0], tables[1]), tables[2]).reshape(-1)
            assert sorted(flat.tolist()) == list(range(flat.size))
            got = hostlib.index_map(tensors[op.inputs[0].index], dims, tables, y.shape)
            assert np.array_equal(got, tensors[y.index]), (op.opcode, op.index, y.shape)


@pytest.mark.parametrize("seed", SEEDS)
def test_l2_normalization_matches_tflm(seed):
    """Every L2_NORMALIZATION against TFLM's tensors over the four input draws (random,
    extremes, all -128, all 127) and two more: every input at its zero point, then one
    element per row a step above it (sums of squares 0 and 1, TFLM's special case)."""
    from firmware_gen.ops import l2_normalization
    model = model_for("l2_normalization", seed)
    ops = [op for op in oracle.read_operators(model) if op.opcode == "L2_NORMALIZATION"]
    assert len(ops) == 5
    zero = [np.full(t.shape, t.zero_point, np.int8) for t in oracle.model_inputs(model)]
    one = [z.copy() for z in zero]
    for z in one:
        z[..., 0] = z[..., 0] + 1 if z.flat[0] < 127 else z[..., 0] - 1
    compared = extremes = tiny = 0
    for draw in [*input_draws(model, seed), zero, one]:
        tensors = oracle.run_capture(model, draw)
        for op in ops:
            x, y = tensors[op.inputs[0].index], tensors[op.outputs[0].index]
            got = hostlib.l2_normalization(x, l2_normalization.prepare(op.index, op)[0])
            assert np.array_equal(got, y), (op.index, op.inputs[0].shape)
            compared += 1
            extremes += int(np.count_nonzero(np.abs(y.astype(int)) >= 100))
            squares = ((x.astype(np.int64) - op.inputs[0].zero_point) ** 2).sum(axis=-1)
            tiny += int(np.count_nonzero(squares <= 1))
    assert compared == 6 * len(ops) and extremes > 0 and tiny > 0


def test_mirror_pad_source_coordinates_are_tflms():
    """REFLECT leaves the edge element out, SYMMETRIC repeats it (tf.pad's documentation
    example: [1, 2, 3] padded by 2 on each side)."""
    from firmware_gen.ops.mirror_pad import source
    x = [1, 2, 3]
    assert [x[source(o, 2, 3, 1)] for o in range(7)] == [3, 2, 1, 2, 3, 2, 1]
    assert [x[source(o, 2, 3, 0)] for o in range(7)] == [2, 1, 1, 2, 3, 3, 2]


@pytest.mark.parametrize("seed", SEEDS)
def test_reduce_max_matches_tflm(seed):
    stats = check_model(model_for("reduce_max", seed), {"REDUCE_MAX"}, seed)
    assert stats["ops"] == 8
    assert stats["min_hits"] and stats["max_hits"]


@pytest.mark.parametrize("seed", SEEDS)
def test_sum_matches_tflm(seed):
    model = model_for("sum", seed)
    sums = [op for op in oracle.read_operators(model) if op.opcode == "SUM"]
    assert {op.options["keepDims"] for op in sums} == {True, False}
    stats = check_model(model, {"SUM"}, seed)
    assert stats["ops"] == 9 and stats["teeth"] > 0 and stats["min_hits"] and stats["max_hits"]


@pytest.mark.parametrize("seed", SEEDS)
def test_transpose_conv_matches_tflm(seed):
    model = model_for("transpose_conv", seed)
    stats = check_model(model, {"TRANSPOSE_CONV"}, seed)
    assert stats["ops"] == 6 and stats["min_hits"] and stats["max_hits"]


@pytest.mark.parametrize("seed", SEEDS)
def test_average_and_max_pool_match_tflm(seed):
    stats = check_model(model_for("pool", seed),
                        {"AVERAGE_POOL_2D", "MAX_POOL_2D"}, seed)
    assert stats["ops"] == 8


def test_add_and_sub_derive_multipliers_in_double_precision_like_tflm():
    """The pinned TFLM build forms the ADD and SUB input/output ratios in
    double; the single-precision ratios of older TFLM sources change some
    outputs by one LSB, and this model contains such outputs."""
    model = model_for("exhaustive_pairs", 3)
    for opcode in ("ADD", "SUB"):
        stats = check_model(model, {opcode}, 3, draws=1)
        assert stats["ops"] == 40
        assert stats["teeth"] > 0, opcode


@pytest.mark.parametrize("opcode", ["ABS", "RELU", "FULLY_CONNECTED", "MEAN"])
def test_parameter_derivation_is_visible_and_matches_tflm(opcode):
    """ABS, RELU and per-tensor FULLY_CONNECTED: the pinned TFLM build forms
    the scale ratio in double; MEAN folds 1/n in by truncating integer
    division. These cases show the difference at the output."""
    model = model_for("precision", 0)
    stats = check_model(model, {opcode}, 0, draws=1)
    assert stats["ops"] == (8 if opcode == "FULLY_CONNECTED" else 6)
    assert stats["teeth"] > 0


def drsn_block_model(seed: int) -> bytes:
    """A small DRSN-CW (conv stem, one residual shrinkage block with a
    channel-wise threshold, global pooling, softmax head) built with Keras 3,
    exported and converted the way the project does it."""
    import tempfile

    import keras
    from keras import layers, ops

    keras.utils.set_random_seed(seed)
    length, ch = 64, 8
    inp = keras.Input((length, 1), batch_size=1)
    x = layers.Conv1D(ch, 5, padding="same")(inp)
    r = layers.BatchNormalization()(x)
    r = layers.ReLU()(r)
    r = layers.Conv1D(ch, 3, padding="same")(r)
    r = layers.BatchNormalization()(r)
    r = layers.ReLU()(r)
    r = layers.Conv1D(ch, 3, padding="same")(r)
    a = layers.GlobalAveragePooling1D()(ops.abs(r))
    z = layers.Dense(ch)(a)
    z = layers.BatchNormalization()(z)
    z = layers.ReLU()(z)
    alpha = layers.Dense(ch, activation="sigmoid")(z)
    tau = ops.expand_dims(alpha * a, 1)
    y = ops.relu(r - tau) + ops.minimum(r + tau, 0.0)
    y = layers.Add()([y, x])
    y = layers.GlobalAveragePooling1D()(layers.ReLU()(y))
    out = layers.Dense(4, activation="softmax")(y)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as d:
        model.export(d, format="tf_saved_model", verbose=False,
                     input_signature=[tf.TensorSpec((1, length, 1), tf.float32)])
        conv = tf.lite.TFLiteConverter.from_saved_model(d)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: (
            [rng.normal(size=(1, length, 1)).astype(np.float32)] for _ in range(16))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        return conv.convert()


def test_every_operator_of_a_converted_drsn_block_matches_tflm():
    model = drsn_block_model(seed=4)
    ops = oracle.read_operators(model)
    opcodes = {op.opcode for op in ops}
    assert {"CONV_2D", "FULLY_CONNECTED", "ABS", "MEAN", "MUL", "SUB", "ADD",
            "MINIMUM", "LOGISTIC", "SOFTMAX", "RESHAPE"} <= opcodes
    for op in ops:  # the whole graph is int8 (plus int32 biases / shapes)
        assert all(t.type in ("INT8", "INT32") for t in op.inputs + op.outputs
                   if t is not None), op.opcode
    stats = check_model(model, opcodes, seed=4)
    assert stats["ops"] == len(ops)
