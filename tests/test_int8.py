"""drsn_edge.int8.quantize_input, the one float -> int8 input rule of every stage, is what
TFLite Micro's QUANTIZE kernel computes: float32 division, halves away from zero, clamping."""

import numpy as np
import pytest

from drsn_edge.int8 import quantize_input
from firmware_gen import tflm_oracle


def test_ties_round_away_from_zero():
    # x / 1.0 = k + 0.5 exactly: half-to-even (np.round) would give 0, 2, -0, -2, 4
    x = np.array([0.5, 1.5, -0.5, -1.5, 3.5, 2.5, -2.5], np.float32)
    assert quantize_input(x, 1.0, 0).tolist() == [1, 2, -1, -2, 4, 3, -3]
    # the zero point is added after rounding: 0.25 / 0.5 = 0.5 -> 1 -> 1 - 3
    assert quantize_input(np.array([0.25, -0.25]), 0.5, -3).tolist() == [-2, -4]


def test_just_below_a_half_rounds_down():
    # 0.49999997 (the float32 below 0.5): adding 0.5 in float32 would give 1.0 and round up
    below = np.nextafter(np.float32(0.5), np.float32(0))
    below_1_5 = np.nextafter(np.float32(1.5), np.float32(0))
    assert quantize_input(np.array([below, -below, below_1_5]), 1.0, 0).tolist() == [0, 0, 1]


def test_clamps_to_int8_after_the_zero_point():
    x = np.array([1000.0, -1000.0, 120.0, -120.0, np.float32(3e38)], np.float32)
    assert quantize_input(x, 1.0, 10).tolist() == [127, -128, 127, -110, 127]
    assert quantize_input(np.array([-0.4]), 1.0, -128).tolist() == [-128]


def _float32_division_cases(scale: np.float32):
    """Inputs whose float32 quotient x / scale is exactly k + 0.5 while the exact (float64)
    quotient is a little less (or more, for negatives): the division's precision decides."""
    found = []
    for k in range(-100, 100):
        x = np.float32((k + 0.5) * float(scale))
        for cand in (x, np.nextafter(x, np.float32(-1e9)), np.nextafter(x, np.float32(1e9))):
            q32 = np.float32(cand) / scale
            q64 = np.float64(cand) / np.float64(scale)
            if q32 == k + 0.5 and np.floor(abs(q64) + 0.5) != abs(k + 0.5) + 0.5:
                found.append(cand)
    return np.array(found, np.float32)


def test_division_is_float32():
    scale = np.float32(0.1)
    x = _float32_division_cases(scale)
    assert len(x) >= 2 and (x > 0).any() and (x < 0).any()
    # std::round of the float32 quotient: k + 0.5 -> away from zero
    q32 = (x / scale).astype(np.float64)
    assert quantize_input(x, scale, 0).tolist() == (np.sign(q32) * (np.abs(q32) + 0.5)).tolist()
    # dividing in float64 would round the other way
    q64 = x.astype(np.float64) / np.float64(scale)
    assert not np.array_equal(quantize_input(x, scale, 0), np.round(q64).astype(np.int8))


@pytest.fixture(scope="module")
def quantize_model():
    """A converted model whose first op is a real QUANTIZE (float input -> int8), followed by
    an int8 FULLY_CONNECTED so the converter keeps it: (model bytes, QUANTIZE output tensor)."""
    import tensorflow as tf
    import keras
    inp = keras.Input((16,), batch_size=1)
    model = keras.Model(inp, keras.layers.Dense(4)(inp))

    def calibration():
        for v in np.linspace(-3, 5, 16 * 8, dtype=np.float32).reshape(8, 1, 16):
            yield [v]
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = calibration
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_output_type = tf.int8          # the input stays float: TFLM quantizes it
    tflite = conv.convert()
    first = tflm_oracle.read_operators(tflite)[0]
    assert first.opcode == "QUANTIZE" and first.inputs[0].type == "FLOAT32"
    assert first.outputs[0].type == "INT8"
    return tflite, first.outputs[0]


def _tflm_quantize(tflite, out, x):
    rows = x.reshape(-1, 16)
    return np.concatenate([tflm_oracle.run_capture(tflite, [r[None]])[out.index].reshape(-1)
                           for r in rows])


def test_equals_the_tflm_quantize_kernel(quantize_model):
    tflite, out = quantize_model
    scale, zp = out.scale, out.zero_point
    assert (scale, zp) != (1.0, 0)
    k = np.arange(-140, 140)
    ties = ((k + 0.5) * scale).astype(np.float32)
    ties = ties[(ties / scale) == (k + 0.5)]              # exact ties in float32
    near = np.concatenate([np.nextafter(ties, np.float32(-np.inf)), np.nextafter(ties, np.float32(np.inf))])
    rng = np.random.default_rng(0)
    x = np.concatenate([ties, near, _float32_division_cases(scale),
                        rng.uniform(-6, 6, 400).astype(np.float32), [0.0, -0.0, 100.0, -100.0]])
    x = np.concatenate([x, np.zeros(-len(x) % 16)]).astype(np.float32)
    assert (ties > 0).sum() > 20 and (ties < 0).sum() > 20
    got = _tflm_quantize(tflite, out, x)
    np.testing.assert_array_equal(quantize_input(x, scale, zp), got)
    # the ties are where half-to-even rounding differs: this comparison can fail
    even = np.clip(np.round(x.astype(np.float32) / scale) + zp, -128, 127).astype(np.int8)
    assert (even != got).sum() > 20
