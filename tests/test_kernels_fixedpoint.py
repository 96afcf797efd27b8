"""The dk fixed-point primitives and quant.py arithmetic, without TensorFlow.

Primitives are checked against Python big-integer definitions on edge values
(INT32_MIN, INT32_MAX, 0, +-1, powers of two and their neighbours) plus
random values; the transcendental helpers against math.exp within their
approximation error. Their bit-exactness against TFLM is proven through the
LOGISTIC / SOFTMAX tests in test_kernels.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from firmware_gen import hostlib, quant

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def edge_values(rng, n_random=300) -> np.ndarray:
    special = [INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX - 1, INT32_MAX]
    for k in range(31):
        for base in (1 << k, -(1 << k)):
            special += [base - 1, base, base + 1]
    rand = rng.integers(INT32_MIN, INT32_MAX, size=n_random, endpoint=True)
    vals = np.clip(np.array(special + rand.tolist(), dtype=np.int64), INT32_MIN, INT32_MAX)
    return np.unique(vals)


# Reference definitions, written from the arithmetic, with exact integers.

def ref_srdhm(a: int, b: int) -> int:
    """round(a * b / 2^31) with ties rounded up (toward +infinity);
    INT32_MIN^2 saturates. Python's // floors, so floor(p + 1/2) exactly."""
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    return (2 * a * b + (1 << 31)) // (1 << 32)


def ref_rdbpot(x: int, e: int) -> int:
    """x / 2^e rounded to nearest, ties away from zero."""
    q, r = divmod(abs(x), 1 << e)
    if e > 0 and 2 * r >= (1 << e):
        q += 1
    return q if x >= 0 else -q


def wrap32(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


def ref_mbqm(x: int, m: int, s: int) -> int:
    left, right = max(s, 0), max(-s, 0)
    return ref_rdbpot(ref_srdhm(wrap32(x << left), m), right)


def test_srdhm_matches_exact_rounding_on_edge_values():
    rng = np.random.default_rng(1)
    vals = edge_values(rng, 60)
    a, b = np.meshgrid(vals, vals)
    got = hostlib.sat_rounding_doubling_high_mul(a.ravel(), b.ravel())
    want = [ref_srdhm(int(x), int(y)) for x, y in zip(a.ravel(), b.ravel())]
    assert got.tolist() == want


def test_rounding_divide_by_pot_rounds_half_away_from_zero():
    rng = np.random.default_rng(2)
    vals = edge_values(rng)
    for e in range(32):
        got = hostlib.rounding_divide_by_pot(vals, e)
        assert got.tolist() == [ref_rdbpot(int(v), e) for v in vals], e


def test_multiply_by_quantized_multiplier_on_edge_values():
    rng = np.random.default_rng(3)
    xs = edge_values(rng, 100)
    for m in (0, 1 << 30, (1 << 31) - 1, 1518500250, int(rng.integers(1 << 30, 1 << 31))):
        for s in (-31, -20, -7, -1, 0, 1, 3, 10):
            got = hostlib.multiply_by_quantized_multiplier(xs, m, s)
            want = [ref_mbqm(int(x), m, s) for x in xs]
            assert got.tolist() == want, (m, s)


@pytest.mark.parametrize("integer_bits", [1, 2, 3, 4, 5, 6, 8])
def test_exp_on_negative_values_approximates_exp(integer_bits):
    frac = 31 - integer_bits
    rng = np.random.default_rng(integer_bits)
    a = -rng.integers(0, 2**31, size=400, endpoint=False)
    a = np.concatenate([a, [0, -1, -(1 << frac), INT32_MIN + 1]])
    got = hostlib.exp_on_negative_values(a, integer_bits) / 2**31
    want = np.exp(a / 2**frac)
    assert np.max(np.abs(got - want)) < 2e-8 * 2**4
    assert got[a == 0][0] == INT32_MAX / 2**31


def test_one_over_one_plus_x_approximates_reciprocal():
    a = np.linspace(0, INT32_MAX, 500).astype(np.int64)
    got = hostlib.one_over_one_plus_x(a) / 2**31
    assert np.max(np.abs(got - 1.0 / (1.0 + a / 2**31))) < 1e-8


def test_fixed_point_logistic_is_symmetric_and_accurate():
    rng = np.random.default_rng(7)
    a = rng.integers(-(15 << 27), 15 << 27, size=500)
    got = hostlib.logistic_fixed(a, 4)
    want = 1.0 / (1.0 + np.exp(-a / 2**27))
    assert np.max(np.abs(got / 2**31 - want)) < 1e-7
    assert hostlib.logistic_fixed([0], 4)[0] == 1 << 30
    # logistic(-x) = 1 - logistic(x), with 1 represented as INT32_MAX.
    assert (hostlib.logistic_fixed(-a, 4) + got == INT32_MAX).all()


# ----------------------------------------------------------- quant.py -----


def test_quantize_multiplier_normalises_and_flushes():
    assert quant.quantize_multiplier(0.0) == quant.Requant(0, 0)
    assert quant.quantize_multiplier(0.5) == quant.Requant(1 << 30, 0)
    assert quant.quantize_multiplier(1.0) == quant.Requant(1 << 30, 1)
    assert quant.quantize_multiplier(0.75) == quant.Requant(3 << 29, 0)
    # A mantissa that rounds up to 1.0 moves into the exponent.
    assert quant.quantize_multiplier(1 - 2**-40) == quant.Requant(1 << 30, 1)
    # Below 2^-32 the multiplier is flushed to zero.
    assert quant.quantize_multiplier(2.0**-33) == quant.Requant(0, 0)
    r = quant.quantize_multiplier(0.1)
    assert r.shift == -3 and abs(r.multiplier / 2**31 * 2**-3 - 0.1) < 2**-34


def test_quantize_multiplier_round_trips_within_half_an_lsb():
    rng = np.random.default_rng(5)
    for real in np.exp(rng.uniform(-20, 5, size=200)):
        r = quant.quantize_multiplier(real)
        assert 1 << 30 <= r.multiplier < 1 << 31
        assert abs(r.multiplier * 2.0 ** (r.shift - 31) - real) <= 2.0 ** (r.shift - 32)


def test_round_half_away_is_exact():
    assert quant.round_half_away(0.5) == 1
    assert quant.round_half_away(-0.5) == -1
    assert quant.round_half_away(2.5) == 3
    assert quant.round_half_away(0.49999999999999994) == 0
    assert quant.round_half_away(-1.4999999) == -1


def test_activation_range_clamps_at_the_quantized_bounds():
    assert quant.activation_range("NONE", 0.1, 3) == quant.Activation(-128, 127)
    assert quant.activation_range("RELU", 0.1, 3) == quant.Activation(3, 127)
    assert quant.activation_range("RELU6", 0.1, -128) == quant.Activation(-128, -68)
    assert quant.activation_range(3, 0.01, 0) == quant.Activation(0, 127)
    assert quant.activation_range("RELU_N1_TO_1", 0.01, 0) == quant.Activation(-100, 100)


def test_add_parameters_are_relative_to_twice_the_larger_scale():
    p = quant.prepare_add(0.02, 1, 0.01, -3, 0.05, 7, "RELU")
    assert p.input1 == quant.Requant(1 << 30, 0)       # 0.5
    assert p.input2 == quant.Requant(1 << 30, -1)      # 0.25
    assert (p.input1_offset, p.input2_offset, p.output_offset) == (-1, 3, 7)
    assert p.left_shift == 20 and p.activation == quant.Activation(7, 127)
    assert quant.prepare_sub(0.02, 1, 0.01, -3, 0.05, 7, "RELU") == p


def test_mean_folds_one_over_n_like_tflm():
    p = quant.prepare_mean(0.5, 0, 0.5, 0, 3)
    # 1.0 -> (2^30, 1); floor(log2 3) = 1: (2^31 // 3, 1 - 1)
    assert p.output == quant.Requant((1 << 31) // 3, 0)
    p = quant.prepare_mean(0.5, 0, 0.25, 0, 1024)
    assert p.output == quant.Requant(1 << 30, 2 - 10)


def test_logistic_and_softmax_parameters():
    p = quant.prepare_logistic(1.0 / 16, 0)
    assert (p.input_multiplier, p.input_left_shift) == (1 << 30, 24)
    assert p.input_range_radius == math.floor(15 * 2**27 / 2**24)
    s = quant.prepare_softmax(1.0 / 16)
    assert (s.input_multiplier, s.input_left_shift) == (1 << 30, 23)
    assert s.diff_min == -math.floor(31 * 2**26 / 2**23)
    with pytest.raises(quant.QuantError):
        quant.prepare_softmax(0.1, output_scale=0.01)


def test_minmax_rejects_mismatched_quantization():
    quant.check_minmax(0.1, 2, 0.1, 2, 0.1, 2)
    with pytest.raises(quant.QuantError):
        quant.check_minmax(0.1, 2, 0.2, 2, 0.1, 2)


def test_conv_output_size_and_padding_follow_tflm():
    assert quant.conv_output_size(10, 3, 1, 1, "SAME") == (10, 1)
    assert quant.conv_output_size(10, 4, 2, 1, "SAME") == (5, 1)
    assert quant.conv_output_size(10, 3, 2, 1, "VALID") == (4, 0)
    assert quant.conv_output_size(9, 3, 1, 2, "SAME") == (9, 2)


@pytest.mark.parametrize("a,b", [
    ((1, 16, 4), (1, 16, 4)),
    ((1, 16, 4), (1, 1, 4)),
    ((1, 1, 4), (1, 16, 4)),
    ((1, 4), (1, 16, 4)),
    ((1, 2, 3, 4, 5), (1, 1, 1, 4, 5)),
    ((2, 1, 3, 1), (1, 4, 1, 6)),
    ((), (3, 2)),
    ((1, 1, 1, 4), (1, 1, 1, 1)),
])
def test_broadcast_plan_reproduces_numpy_indexing(a, b):
    plan = quant.broadcast_plan(a, b)
    x = np.arange(int(np.prod(a))).reshape(a)
    y = np.arange(int(np.prod(b))).reshape(b) * 1000
    want = (np.broadcast_to(x, np.broadcast_shapes(a, b)).ravel(),
            np.broadcast_to(y, np.broadcast_shapes(a, b)).ravel())
    got1, got2 = [], []
    d, s1, s2 = plan.out_dims, plan.in1_strides, plan.in2_strides
    for i0 in range(d[0]):
        for i1 in range(d[1]):
            for i2 in range(d[2]):
                for i3 in range(d[3]):
                    idx = (i0, i1, i2, i3)
                    got1.append(x.ravel()[sum(i * s for i, s in zip(idx, s1))])
                    got2.append(y.ravel()[sum(i * s for i, s in zip(idx, s2))])
    assert got1 == want[0].tolist() and got2 == want[1].tolist()
    if a == b:
        assert plan.is_elementwise


def test_broadcast_plan_rejects_patterns_needing_five_loops():
    with pytest.raises(quant.QuantError):
        quant.broadcast_plan((2, 1, 3, 1, 5), (1, 4, 1, 6, 1))


def test_broadcast_kernels_agree_with_numpy_on_alternating_axes():
    rng = np.random.default_rng(9)
    a = rng.integers(-128, 128, size=(2, 1, 3, 1)).astype(np.int8)
    b = rng.integers(-128, 128, size=(1, 4, 1, 6)).astype(np.int8)
    assert np.array_equal(hostlib.minimum(a, b), np.minimum(a, b))
    assert np.array_equal(hostlib.maximum(b, a), np.maximum(a, b))


def test_mean_plan_views_contiguous_axes():
    assert quant.mean_plan((1, 20, 4), [1]) == (1, 20, 4)
    assert quant.mean_plan((1, 1, 20, 4), [1, 2]) == (1, 20, 4)
    assert quant.mean_plan((3, 20, 4), [-2]) == (3, 20, 4)
    with pytest.raises(quant.QuantError):
        quant.mean_plan((2, 3, 4), [0, 2])


def test_lut_reproduces_the_kernel_it_tabulates():
    p = quant.prepare_logistic(0.05, 3)
    table = hostlib.unary_lut(lambda v: hostlib.logistic(v, p))
    x = np.random.default_rng(0).integers(-128, 128, size=1000).astype(np.int8)
    assert np.array_equal(hostlib.lut(x, table), hostlib.logistic(x, p))


def test_logistic_table_is_the_kernel_for_every_input():
    """The generator's LOGISTIC table (quant.logistic_table, Python ints) holds what the
    fixed-point kernel dk_logistic_s8 gives for each of the 256 inputs, over input scales
    from saturating at a step to needing most of the range, and every zero point."""
    rng = np.random.default_rng(5)
    x = np.arange(-128, 128, dtype=np.int8)
    for case in range(200):
        scale = float(np.float32(np.exp(rng.uniform(np.log(1e-4), np.log(4.0)))))
        p = quant.prepare_logistic(scale, int(rng.integers(-128, 128)))
        table = np.array(quant.logistic_table(p), np.int8)
        assert np.array_equal(table[x.view(np.uint8)], hostlib.logistic(x, p)), (case, scale)


def test_host_library_is_built_with_warnings_as_errors():
    assert "-Werror" in hostlib.CFLAGS and "-std=c99" in hostlib.CFLAGS
    assert hostlib.build().exists()
