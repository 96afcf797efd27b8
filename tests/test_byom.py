"""Bring your own model (`--model PATH.tflite`): int8 models that are not this project's,
built here with Keras (random weights, int8 post-training quantization with a
representative dataset), through the compiled runtime bit for bit against the TFLM host
runtime: on the host for a set of 1D/2D shapes (strides, SAME/VALID padding, dilation,
depth multipliers, pooling, a keyword-spotting DS-CNN, an FC autoencoder), and on the
default emulated board with `drsn-edge firmware --model` and `drsn-edge hil --model` on
seeded random inputs. An op the compiled runtime lacks is one line naming it and the TFLM
back end."""

from __future__ import annotations

import ctypes
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import boards  # noqa: E402
from drsn_edge.cli import main  # noqa: E402
from drsn_edge.errors import UserError  # noqa: E402
from firmware_gen import codegen, stage, tflm_oracle  # noqa: E402
from quantize.audit import inspect, read_model  # noqa: E402
from runner import hil  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

SMOKE = str(ROOT / "configs" / "smoke.toml")
SEED = 7            # the smoke config's seed: the random self-test and HIL inputs use it


# --- models -------------------------------------------------------------------------------------

def to_int8(model, shape, seed: int = 0, samples: int = 24, output_type=None) -> bytes:
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(samples):
            yield [rng.normal(0, 1, size=(1, *shape)).astype(np.float32)]
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = output_type or tf.int8
    for _ in range(5):
        rng = np.random.default_rng(seed)   # the same calibration windows each time
        flat = conv.convert()
        # TF's converter is not deterministic here: now and then (about one run in three for
        # the unrolled GRU) it leaves an int8 SPLIT in float between a DEQUANTIZE and a
        # QUANTIZE, a float island the compiled runtime refuses. Convert again.
        ops = tflm_oracle.read_operators(flat)
        outputs = {t.index for t in tflm_oracle.model_outputs(flat)}
        if not any(op.opcode == "DEQUANTIZE" and op.outputs[0].index not in outputs for op in ops):
            return flat
    return flat


def keras_model(shape, body, seed: int = 3, output_type=None) -> bytes:
    """int8 internals and input; output int8, or float32 (output_type=tf.float32: the
    converter ends the graph with a DEQUANTIZE)."""
    import keras
    keras.utils.set_random_seed(seed)
    x = keras.Input(shape, batch_size=1)
    return to_int8(keras.Model(x, body(x)), shape, seed, output_type=output_type)


def cnn1d(L):
    """A small 1D CNN that is not ours: 2-channel window, strided SAME conv, pooling."""
    def body(x):
        h = L.Conv1D(8, 5, strides=2, padding="same", activation="relu")(x)
        h = L.MaxPooling1D(2)(h)
        h = L.Conv1D(12, 3, padding="valid", activation="relu")(h)
        h = L.AveragePooling1D(2)(h)
        h = L.GlobalAveragePooling1D()(h)
        return L.Dense(4, activation="softmax")(h)
    return (128, 2), body


def cnn2d(L):
    """16x16x1 -> conv (stride 2, SAME) -> depthwise (VALID) -> max pool -> conv 1x3 ->
    average pool -> FC -> softmax."""
    def body(x):
        h = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
        h = L.DepthwiseConv2D(3, padding="valid", activation="relu")(h)
        h = L.MaxPooling2D(2, padding="same")(h)
        h = L.Conv2D(8, (1, 3), padding="same")(h)
        h = L.AveragePooling2D((2, 1))(h)
        return L.Dense(5, activation="softmax")(L.Flatten()(h))
    return (16, 16, 1), body


# --- the model families users bring (MLPerf Tiny-like shapes; random weights) -----------------

def head(L, classes: int):
    """The classifier: random weights large enough that the softmax is not flat (with the
    default initialisation a deep random model answers every input alike)."""
    return L.Dense(classes, activation="softmax",
                   kernel_initializer=keras_init().RandomNormal(0.0, 4.0, seed=5))


def he_depthwise():
    """He initialisation for a 3x3 depthwise kernel, so that a random network's signal
    survives its depth (Keras's "he_normal" counts the fan-in over every channel)."""
    return keras_init().RandomNormal(0.0, (2 / 9) ** 0.5)


def dscnn(L):
    """Keyword spotting DS-CNN on 49x10 MFCC-like input: a strided 10x4 conv, four
    depthwise-separable blocks (batch norm folded by the converter), average pool, FC."""
    def body(x):
        h = L.ReLU()(L.BatchNormalization()(L.Conv2D(64, (10, 4), strides=2, padding="same",
                                                     kernel_initializer="he_normal")(x)))
        for _ in range(4):
            h = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(
                3, padding="same", depthwise_initializer=he_depthwise())(h)))
            h = L.ReLU()(L.BatchNormalization()(L.Conv2D(64, 1, kernel_initializer="he_normal")(h)))
        h = L.AveragePooling2D(pool_size=(25, 5))(h)
        return head(L, 12)(L.Flatten()(h))
    return (49, 10, 1), body


def resnet8(L):
    """ResNet-8 for 32x32x3 images: three residual stacks (16, 32, 64 channels; 1x1
    strided projections), average pool, FC."""
    def block(h, ch, stride):
        y = L.ReLU()(L.BatchNormalization()(L.Conv2D(ch, 3, strides=stride, padding="same")(h)))
        y = L.BatchNormalization()(L.Conv2D(ch, 3, padding="same")(y))
        if stride != 1:
            h = L.Conv2D(ch, 1, strides=stride)(h)
        return L.ReLU()(L.Add()([h, y]))

    def body(x):
        h = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, padding="same")(x)))
        h = block(block(block(h, 16, 1), 32, 2), 64, 2)
        h = L.AveragePooling2D(pool_size=8)(h)
        return head(L, 10)(L.Flatten()(h))
    return (32, 32, 3), body


def mobilenet(L):
    """MobileNet-v1 with width 0.25 on 96x96 RGB (the visual wake words shape): a strided
    3x3 conv, 13 depthwise-separable blocks (8 -> 256 channels, ReLU6), global average pool,
    a 2-class head, He-initialised."""
    he, he_dw = "he_normal", he_depthwise()
    blocks = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1),
              (128, 1), (128, 1), (128, 1), (256, 2), (256, 1)]

    def body(x):
        h = L.ReLU(6.0)(L.Conv2D(8, 3, strides=2, padding="same", kernel_initializer=he)(x))
        for ch, stride in blocks:
            h = L.ReLU(6.0)(L.DepthwiseConv2D(3, strides=stride, padding="same",
                                              depthwise_initializer=he_dw)(h))
            h = L.ReLU(6.0)(L.Conv2D(ch, 1, kernel_initializer=he)(h))
        return head(L, 2)(L.GlobalAveragePooling2D()(h))
    return (96, 96, 3), body


def autoencoder(L):
    """The anomaly-detection FC autoencoder: 640 -> 4x128 -> 8 -> 4x128 -> 640, each hidden
    layer Dense + batch norm + ReLU."""
    def body(x):
        h = x
        for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
            h = L.ReLU()(L.BatchNormalization()(L.Dense(units)(h)))
        return L.Dense(640)(h)
    return (640,), body


def rnn_attention(L):
    """A sequence model: an unrolled SimpleRNN returning its sequence (UNPACK, TANH, PACK;
    the converter requantizes the steps before stacking them), self-attention over it
    (MultiHeadAttention: BATCH_MATMUL, SOFTMAX, TRANSPOSE), a softmax head."""
    def body(x):
        h = L.SimpleRNN(8, unroll=True, return_sequences=True)(x)
        h = L.MultiHeadAttention(2, 4)(h, h)
        return L.Dense(4, activation="softmax")(L.Flatten()(h))
    return (8, 6), body


# Board runs: (builder, HIL vectors, ops the converted model must contain).
def rms_norm_space_batch(L):
    """8x8x2 -> conv -> tf.space_to_batch_nd (block 2, padding 1 all round) -> ReLU ->
    tf.batch_to_space (the padding cropped off) -> RMS normalization over the channels
    (tf.math.rsqrt) -> global average pool -> FC."""
    def body(x):
        h = L.Conv2D(4, 3, padding="same")(x)
        h = L.Lambda(lambda t: tf.batch_to_space(tf.nn.relu(tf.space_to_batch_nd(
            t, [2, 2], [[1, 1], [1, 1]])), [2, 2], [[1, 1], [1, 1]]))(h)
        h = L.Lambda(lambda t: t * tf.math.rsqrt(tf.reduce_mean(t * t, axis=-1, keepdims=True) + 1e-2))(h)
        return L.Dense(5)(L.GlobalAveragePooling2D()(h))
    return (8, 8, 2), body


BOARD_MODELS = {
    "cnn1d": (cnn1d, 64, {"CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D"}),
    "cnn2d": (cnn2d, 64, {"CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D"}),
    "dscnn": (dscnn, 32, {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED"}),
    "resnet8": (resnet8, 24, {"CONV_2D", "ADD", "AVERAGE_POOL_2D", "FULLY_CONNECTED"}),
    "mobilenet": (mobilenet, 6, {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "SOFTMAX"}),
    "autoencoder": (autoencoder, 48, {"FULLY_CONNECTED"}),
    "rnn_attention": (rnn_attention, 48, {"UNPACK", "PACK", "QUANTIZE", "BATCH_MATMUL", "SOFTMAX"}),
    "rms_norm_space_batch": (rms_norm_space_batch, 48, {"SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "RSQRT"}),
}


def keras_init():
    import keras
    return keras.initializers


def _layers():
    from keras import layers
    return layers


def transposed_matmuls(x):
    """tf.matmul with transpose_a against a batch of 1 broadcast over 2 (adj_x), and of a
    tensor with itself transposed (adj_y), each through a Dense of its own into an ADD. (A
    Concatenate of the two products, which makes them share one scale, sometimes calibrates
    to a scale of 1e16 or more when the model is built a second time in a process: a
    converter quirk that leaves every output at 127.)"""
    L = _layers()
    a = L.Reshape((2, 4, 3))(L.Dense(6)(x))
    b = L.Reshape((1, 4, 5))(L.Dense(5)(x))
    c = L.Lambda(lambda t: tf.matmul(t[0], t[1], transpose_a=True))([a, b])
    d = L.Lambda(lambda t: tf.matmul(t, t, transpose_b=True))(a)
    return L.Add()([L.Dense(8)(L.Flatten()(c)), L.Dense(8)(L.Flatten()(d))])


# Shapes the compiled runtime must get right (each a separate model, checked on the host).
HOST_CASES = {
    "conv-5x5-stride2-valid": lambda L: ((20, 20, 3), lambda x: L.Flatten()(
        L.Conv2D(4, 5, strides=2, padding="valid")(x))),
    "conv-3x2-stride2x1-same-relu6": lambda L: ((12, 9, 2), lambda x: L.Flatten()(
        L.Conv2D(4, (3, 2), strides=(2, 1), padding="same", activation="relu6")(x))),
    "conv-dilation2": lambda L: ((12, 12, 2), lambda x: L.Flatten()(
        L.Conv2D(4, 3, dilation_rate=2, padding="same")(x))),
    "depthwise-mult2-stride2": lambda L: ((10, 10, 3), lambda x: L.Flatten()(
        L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same")(x))),
    "pools-same-and-valid": lambda L: ((9, 9, 4), lambda x: L.Flatten()(
        L.MaxPooling2D(2, strides=1)(L.AveragePooling2D(3, strides=2, padding="same")(x)))),
    # No weights and a large input: TFLM's host runtime must get an arena for its activations
    # (its default, ten times the model's bytes, failed to allocate).
    "pools-on-a-large-input": lambda L: ((40, 40, 16), lambda x: L.Flatten()(
        L.AveragePooling2D(2)(L.MaxPooling2D((1, 5), strides=(3, 1))(x)))),
    "kws-dscnn-49x10": lambda L: ((49, 10, 1), lambda x: L.Dense(12, activation="softmax")(
        L.GlobalAveragePooling2D()(L.DepthwiseConv2D(3, padding="same", activation="relu")(
            L.Conv2D(16, (10, 4), strides=(2, 2), padding="same", activation="relu")(x))))),
    "fc-autoencoder": lambda L: ((64,), lambda x: L.Dense(64)(
        L.Dense(8, activation="relu")(L.Dense(32, activation="relu")(x)))),
    "pad-1d-and-2d": lambda L: ((20, 3), lambda x: L.Flatten()(L.ZeroPadding2D(((1, 0), (2, 1)))(
        L.Reshape((23, 3, 1))(L.ZeroPadding1D((2, 1))(x))))),
    "causal-dilated-conv1d": lambda L: ((64, 3), lambda x: L.Flatten()(
        L.Conv1D(4, 3, dilation_rate=2, padding="causal")(x))),
    "concat-channels-and-rows": lambda L: ((8, 6, 2), lambda x: L.Flatten()(L.Concatenate(axis=1)([
        L.Concatenate(axis=-1)([L.Conv2D(2, 1)(x), L.MaxPooling2D(1)(x)]), L.Conv2D(4, 1)(x)]))),
    "leaky-relu": lambda L: ((6, 6, 3), lambda x: L.Flatten()(L.LeakyReLU(0.3)(L.Conv2D(4, 3)(x)))),
    "relu6-standalone": lambda L: ((8, 8, 2), lambda x: L.ReLU(6.0)(L.Reshape((64, 2))(x))),
    "tanh-on-the-input": lambda L: ((256,), lambda x: L.Activation("tanh")(x)),
    "tanh-after-dense": lambda L: ((32,), lambda x: L.Activation("tanh")(L.Dense(64)(x))),
    "hard_swish-on-the-input": lambda L: ((256,), lambda x: L.Activation("hard_swish")(x)),
    "hard_swish-after-dense": lambda L: ((32,), lambda x: L.Activation("hard_swish")(L.Dense(64)(x))),
    "transpose-2d-and-3d": lambda L: ((3, 5, 6), lambda x: L.Concatenate()([
        L.Flatten()(L.Permute((3, 1, 2))(x)), L.Flatten()(L.Permute((2, 1))(L.Reshape((15, 6))(x)))])),
    "prelu-per-channel": lambda L: ((16,), lambda x: L.PReLU(
        alpha_initializer=keras_init().RandomUniform(-0.5, 1.5))(L.Dense(16)(x))),
    "prelu-shared-axes": lambda L: ((6, 6, 3), lambda x: L.Flatten()(L.PReLU(
        alpha_initializer=keras_init().RandomUniform(-2, 2), shared_axes=[1, 2])(L.Conv2D(4, 3)(x)))),
    "crop-2d-and-1d": lambda L: ((10, 9, 3), lambda x: L.Concatenate()([
        L.Flatten()(L.Cropping2D(((1, 2), (3, 0)))(L.Conv2D(4, 3)(x))),
        L.Flatten()(L.Cropping1D((2, 1))(L.Reshape((30, 9))(x)))])),
    "resize-nearest-up-and-down": lambda L: ((6, 5, 2), lambda x: L.Concatenate()([
        L.Flatten()(L.Resizing(13, 11, interpolation="nearest")(L.Conv2D(3, 1)(x))),
        L.Flatten()(L.Resizing(4, 3, interpolation="nearest")(x))])),
    "log_softmax-after-dense": lambda L: ((12,), lambda x: L.Activation("log_softmax")(L.Dense(10)(x))),
    "sum-over-rows-and-channels": lambda L: ((7, 5, 3), lambda x: L.Concatenate()([
        L.Flatten()(L.Lambda(lambda t: tf.reduce_sum(t, axis=1))(L.Conv2D(4, 1)(x))),
        L.Flatten()(L.Lambda(lambda t: tf.reduce_sum(t, axis=-1, keepdims=True))(x))])),
    "transpose_conv-same-and-valid": lambda L: ((5, 4, 2), lambda x: L.Concatenate()([
        L.Flatten()(L.Conv2DTranspose(3, 3, strides=2, padding="same")(x)),
        L.Flatten()(L.Conv2DTranspose(2, (2, 3), strides=(1, 2), padding="valid")(L.Conv2D(3, 1)(x)))])),
    "global-max-pool-2d-and-1d": lambda L: ((8, 8, 3), lambda x: L.Concatenate()([
        L.GlobalMaxPooling2D()(L.Conv2D(4, 3, activation="relu")(x)),
        L.GlobalMaxPooling1D()(L.Reshape((64, 3))(x))])),
    "slice-windows": lambda L: ((9, 6), lambda x: L.Concatenate()([
        L.Flatten()(L.Lambda(lambda t: tf.slice(t, [0, 2, 1], [1, 5, 4]))(L.Dense(6)(x))),
        L.Flatten()(L.Lambda(lambda t: tf.slice(t, [0, 0, 3], [1, -1, -1]))(x))])),
    "bilinear-upsampling-and-resizing": lambda L: ((6, 5, 2), lambda x: L.Concatenate()([
        L.Flatten()(L.UpSampling2D(interpolation="bilinear")(L.Conv2D(3, 1)(x))),
        L.Flatten()(L.Resizing(4, 9)(x))])),
    "split-and-split_v": lambda L: ((6, 8), lambda x: L.Concatenate()([
        L.Flatten()(t) for t in (L.Lambda(lambda t: tf.split(t, 2, axis=-1))(L.Dense(8)(x))
                                 + L.Lambda(lambda t: tf.split(t, [1, 3, 2], axis=1))(x))[::-1]])),
    "unpack-unrolled-simple_rnn": lambda L: ((10, 4), lambda x: L.Dense(3)(L.SimpleRNN(8, unroll=True)(x))),
    "unpack-unrolled-gru": lambda L: ((8, 3), lambda x: L.Dense(4)(L.GRU(6, unroll=True)(x))),
    "pack-unstack-restack": lambda L: ((4, 6), lambda x: L.Flatten()(L.Lambda(
        lambda t: tf.stack(tf.unstack(t, axis=1)[::-1], axis=2))(L.Dense(6)(x)))),
    "batch_matmul-attention": lambda L: ((6, 8), lambda x: L.Flatten()(L.MultiHeadAttention(2, 4)(x, x))),
    "batch_matmul-transposed-and-broadcast": lambda L: ((4, 6), transposed_matmuls),
    "gather-channels-and-steps": lambda L: ((10, 6), lambda x: L.Concatenate()([
        L.Flatten()(L.Lambda(lambda t: tf.gather(t, [3, 0, 7, 7], axis=1))(x)),
        L.Flatten()(L.Lambda(lambda t: tf.gather(t, [5, 1], axis=2))(L.Dense(6)(x)))])),
    "mirror_pad-reflect-and-symmetric": lambda L: ((8, 7, 2), lambda x: L.Concatenate()([
        L.Flatten()(L.Lambda(lambda t: tf.pad(t, [[0, 0], [1, 2], [3, 0], [0, 0]], "REFLECT"))(x)),
        L.Flatten()(L.Lambda(lambda t: tf.pad(t, [[0, 0], [2, 2], [0, 1], [1, 1]], "SYMMETRIC"))(
            L.Conv2D(3, 3)(x)))])),
    "depth_to_space-and-space_to_depth": lambda L: ((8, 6, 2), lambda x: L.Flatten()(
        L.Lambda(lambda t: tf.nn.depth_to_space(t, 2))(L.Conv2D(8, 1)(
            L.Lambda(lambda t: tf.nn.space_to_depth(t, 2))(x))))),
    "requantize-time_distributed": lambda L: ((6, 5), lambda x: L.Flatten()(
        L.TimeDistributed(L.Dense(3, activation="tanh"))(x))),
    "squared_difference-to-a-centre": lambda L: ((12, 4), lambda x: L.Flatten()(L.Lambda(
        lambda t: tf.math.squared_difference(t[0], t[1]))([L.Dense(4)(x), L.Dense(1)(L.Dense(4)(x))]))),
    "l2_normalization-embedding": lambda L: ((6, 5), lambda x: L.Flatten()(L.Lambda(
        lambda t: tf.math.l2_normalize(t, axis=-1))(L.Dense(16)(x)))),
    "rsqrt-normalization": lambda L: ((6, 8), lambda x: L.Flatten()(L.Lambda(
        lambda t: t * tf.math.rsqrt(tf.reduce_mean(t * t, axis=-1, keepdims=True) + 1e-3))(L.Dense(8)(x)))),
    # the padding is cropped away again: TFLM's own padding byte is its arena's (ops/space_batch.py)
    "space_to_batch-and-back": lambda L: ((8, 6, 2), lambda x: L.Concatenate()([
        L.Flatten()(L.Lambda(lambda t: tf.batch_to_space(tf.nn.relu(tf.space_to_batch_nd(
            t, [2, 2], [[1, 1], [0, 2]])), [2, 2], [[1, 1], [0, 2]]))(L.Conv2D(3, 1)(x))),
        L.Flatten()(L.Lambda(lambda t: tf.batch_to_space(tf.space_to_batch_nd(t, [3], [[1, 2]]) * 2.0,
                                                         [3], [[1, 2]]))(L.Reshape((48, 2))(x)))])),
    "cnn1d": cnn1d,
    "cnn2d": cnn2d,
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Every HOST_CASES model, converted once per module, as {name: bytes}."""
    L = _layers()
    return {name: keras_model(*make(L)) for name, make in HOST_CASES.items()}


def host_library(model: bytes, out: Path) -> tuple[ctypes.CDLL, dict]:
    info = codegen.generate(model, out, name="byom")
    lib = out / "libmodel.so"
    srcs = [out / "model.c", out / "model_data.c", *codegen.runtime_sources()]
    proc = subprocess.run(["gcc", "-O1", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
                           "-o", str(lib), *[f"-I{p}" for p in codegen.include_dirs()], *map(str, srcs)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return ctypes.CDLL(str(lib)), info


@pytest.mark.parametrize("name", list(HOST_CASES))
def test_generated_c_is_bit_exact_to_tflm_for_other_models(name, models, tmp_path):
    model = models[name]
    codegen.check(model, name)          # supported: no error
    lib, info = host_library(model, tmp_path)
    inp = tflm_oracle.model_inputs(model)[0]
    rng = np.random.default_rng(1)
    n = 24
    q = rng.integers(-128, 128, size=(n, *inp.shape[1:]), dtype=np.int16).astype(np.int8)
    q[0], q[1] = -128, 127            # saturation at both ends
    ref = tflm_oracle.run(model, q).reshape(n, -1)
    got = np.zeros_like(ref)
    for i in range(n):
        x = np.ascontiguousarray(q[i])
        assert lib.model_invoke(x.ctypes.data_as(ctypes.c_void_p),
                                got[i].ctypes.data_as(ctypes.c_void_p)) == 0
    np.testing.assert_array_equal(got, ref)
    assert len(np.unique(ref, axis=0)) > 1, "outputs do not depend on the input: a test without teeth"
    wanted = {"pools": {"MAX_POOL_2D", "AVERAGE_POOL_2D"}, "pad": {"PAD"}, "causal": {"PAD"},
              "concat": {"CONCATENATION"}, "leaky": {"LEAKY_RELU"}, "relu6": {"RELU6"}, "tanh": {"TANH"},
              "hard_swish": {"HARD_SWISH"}, "transpose": {"TRANSPOSE"}, "prelu": {"PRELU"},
              "crop": {"STRIDED_SLICE"}, "resize": {"RESIZE_NEAREST_NEIGHBOR"},
              "sum": {"SUM"}, "transpose_conv": {"TRANSPOSE_CONV"},
              "log_softmax": {"LOG_SOFTMAX"}, "global": {"REDUCE_MAX"}, "slice": {"SLICE"},
              "split": {"SPLIT", "SPLIT_V"}, "bilinear": {"RESIZE_BILINEAR"},
              "unpack": {"UNPACK"}, "pack": {"PACK", "UNPACK"},
              "batch_matmul": {"BATCH_MATMUL"}, "gather": {"GATHER"}, "mirror_pad": {"MIRROR_PAD"},
              "depth_to_space": {"DEPTH_TO_SPACE", "SPACE_TO_DEPTH"}, "requantize": {"QUANTIZE", "PACK"},
              "squared_difference": {"SQUARED_DIFFERENCE"}, "l2_normalization": {"L2_NORMALIZATION"},
              "rsqrt": {"RSQRT"}, "space_to_batch": {"SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND"}}
    assert wanted.get(name.split("-")[0], set()) <= set(info["ops"]), info["ops"]


def test_batch_matmul_arithmetic_is_tflms(models, tmp_path):
    """The transposed and broadcast products: adj_x and adj_y read through element steps, a
    batch of 1 read again for every batch (step 0), the multiplier from the float32 product
    of the operand scales; the generated C equals TFLM on random and extreme inputs."""
    from firmware_gen.ops import batch_matmul
    model = models["batch_matmul-transposed-and-broadcast"]
    ops = [op for op in tflm_oracle.read_operators(model) if op.opcode == "BATCH_MATMUL"]
    plans = {(op.options["adjX"], op.options["adjY"]): batch_matmul.prepare(op.index, op) for op in ops}
    assert set(plans) == {(True, False), (False, True)}
    tx = plans[(True, False)]
    assert tx["batch"] == [1, 1, 2] and tx["rhs_batch_step"] == [0, 0, 0] and tx["lhs_batch_step"][2] == 12
    assert (tx["rows"], tx["depth"], tx["cols"], tx["lhs_row_step"], tx["lhs_depth_step"]) == (3, 4, 5, 1, 3)
    ty = plans[(False, True)]
    assert (ty["rows"], ty["depth"], ty["cols"], ty["rhs_col_step"], ty["rhs_depth_step"]) == (4, 3, 4, 3, 1)
    for op in ops:
        a, b, y = op.inputs[0], op.inputs[1], op.outputs[0]
        real = float(np.float32(a.scale) * np.float32(b.scale)) / float(np.float32(y.scale))
        r = plans[(op.options["adjX"], op.options["adjY"])]["output"]
        assert abs(r.multiplier * 2.0 ** (r.shift - 31) - real) <= 2.0 ** (r.shift - 31)
    lib, _ = host_library(model, tmp_path)
    rng = np.random.default_rng(5)
    q = rng.integers(-128, 128, size=(64, 4, 6), dtype=np.int16).astype(np.int8)
    q[:8] = rng.choice(np.array([-128, 127], np.int8), size=(8, 4, 6))
    ref = tflm_oracle.run(model, q).reshape(len(q), -1)
    got = np.zeros_like(ref)
    for i in range(len(q)):
        x = np.ascontiguousarray(q[i])
        assert lib.model_invoke(x.ctypes.data_as(ctypes.c_void_p), got[i].ctypes.data_as(ctypes.c_void_p)) == 0
    np.testing.assert_array_equal(got, ref)
    assert len(np.unique(ref, axis=0)) == len(q) and len(np.unique(ref)) > 60


def test_a_users_int8_requantize_passes_the_audit(models):
    """Keras TimeDistributed converts to per-step ops whose outputs the converter
    requantizes (QUANTIZE int8 -> int8) before stacking them: TFLM runs that, so a user's
    model with it deploys (our own models still refuse it: QAT should not need one)."""
    model = models["requantize-time_distributed"]
    ops = [op for op in tflm_oracle.read_operators(model) if op.opcode == "QUANTIZE"]
    assert ops and all(op.inputs[0].type == op.outputs[0].type == "INT8" for op in ops)
    assert audit_user(model)["problems"] == []
    assert any("int8→int8 requantize boundary" in p for p in inspect(model, "m")["problems"])


def test_a_constant_strided_slice_passes_the_audit(models):
    """Keras Cropping gives STRIDED_SLICE with constant begin/end/strides on int8 data: a
    copy the compiled runtime has, not a shape computed at run time."""
    rep = inspect(models["crop-2d-and-1d"], "crop")
    assert rep["op_counts"].get("STRIDED_SLICE") == 2 and rep["problems"] == [], rep["problems"]


# --- a float32 output (a final DEQUANTIZE) --------------------------------------------------------

FLOAT_OUTPUT_CASES = {
    "dense-classifier": lambda L: ((16,), lambda x: L.Dense(10)(L.Dense(12, activation="relu")(x))),
    "softmax": lambda L: ((24,), lambda x: L.Dense(6, activation="softmax")(x)),
    "conv-feature-map": lambda L: ((10, 10, 2), lambda x: L.Conv2D(3, 3, strides=2)(x)),
}


def float_output_model(name: str) -> bytes:
    return keras_model(*FLOAT_OUTPUT_CASES[name](_layers()), output_type=tf.float32)


@pytest.mark.parametrize("name", list(FLOAT_OUTPUT_CASES))
def test_a_float_output_is_bit_exact_to_tflm_on_the_host(name, tmp_path):
    """inference_output_type float32: the int8 graph ends in DEQUANTIZE; the generated C
    writes the float32 bytes TFLM writes (scale widened to double, one rounding to float)."""
    model = float_output_model(name)
    ops = [op.opcode for op in tflm_oracle.read_operators(model)]
    assert ops[-1] == "DEQUANTIZE" and ops.count("DEQUANTIZE") == 1, ops
    rep = inspect(model, name, allow_float_output=True)
    assert rep["problems"] == [] and rep["output"]["dtype"] == "float32"
    codegen.check(model, name)
    lib, info = host_library(model, tmp_path)
    assert info["output"]["dtype"] == "float32" and info["layers"][-1]["dtype"] == "float32"
    model_c = (tmp_path / "model.c").read_text()
    assert "dk_dequantize_s8_f32(" in model_c
    inp = tflm_oracle.model_inputs(model)[0]
    rng = np.random.default_rng(2)
    n = 64
    q = rng.integers(-128, 128, size=(n, *inp.shape[1:]), dtype=np.int16).astype(np.int8)
    q[0], q[1] = -128, 127
    ref = tflm_oracle.run(model, q).reshape(n, -1)
    assert ref.dtype == np.float32
    got = np.full(ref.shape, np.nan, np.float32)
    for i in range(n):
        x = np.ascontiguousarray(q[i])
        assert lib.model_invoke(x.ctypes.data_as(ctypes.c_void_p),
                                got[i].ctypes.data_as(ctypes.c_void_p)) == 0
    assert got.tobytes() == ref.tobytes()                     # the very same float32 bytes
    assert len(np.unique(ref)) > n, "too few distinct outputs to prove the rounding"


def test_the_audit_accepts_dequantize_only_as_a_user_models_last_op():
    model = float_output_model("dense-classifier")
    assert inspect(model, "m", allow_float_output=True)["problems"] == []
    # our own models stay fully int8
    problems = inspect(model, "m")["problems"]
    assert any("float32, not int8" in p for p in problems), problems
    # a DEQUANTIZE that does not write the model's output is still a float island
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    g = m.subgraphs[0]
    g.outputs = np.array([g.operators[-1].inputs[0]], np.int32)     # the int8 tensor before it
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    problems = inspect(bytes(b.Output()), "m", allow_float_output=True)["problems"]
    assert any("DEQUANTIZE is a int8→float32 boundary inside the graph (only a final" in p
               for p in problems), problems
    from tests.test_bad_input import tiny_tflite
    with pytest.raises(UserError, match="float32"):
        audit_user(tiny_tflite(dtype="float"))


def test_the_layer_debug_compares_a_float32_output_bit_for_bit():
    """hil --debug on a float32 output: one unit in the last place is a difference (an int8
    cast of the floats would hide it)."""
    from runner import debug
    from runner.link import DebugResult, LayerTensor
    from runner.protocol import LayerInfo, TensorInfo
    model = float_output_model("dense-classifier")
    ops = tflm_oracle.read_operators(model)
    x = np.arange(-8, 8, dtype=np.int8)
    host = tflm_oracle.run(model, x[None]).reshape(-1)
    k = len(ops) - 1
    info = LayerInfo(k, f"{k}:dequantize:out", "activation", TensorInfo((10,), 40, 0.0, 0))
    assert info.tensor.dtype == np.float32

    def dump(values):
        return DebugResult(values, [LayerTensor(info, values)])
    same = debug.compare(dump(host.copy()), model, x)
    assert same["output_equal"] and same["first_difference"] is None
    nudged = host.copy()
    nudged[3] = np.nextafter(nudged[3], np.float32(np.inf))
    off = debug.compare(dump(nudged), model, x)
    assert not off["output_equal"]
    assert off["first_difference"]["first_difference"]["element"] == 3
    assert off["layers"][-1]["max_lsb"] == 1 and off["layers"][-1]["status"] == "DIFFERS"


# --- a float32 input (a first QUANTIZE float32 -> int8) ---------------------------------------------

def calibrated_converter(shape, body, seed: int, data: tuple):
    """A TFLite converter for the Keras model body(Input(shape)) with post-training
    quantization on 24 windows drawn uniformly from `data` (its range sets the zero points)."""
    import keras
    keras.utils.set_random_seed(seed)
    x = keras.Input(shape, batch_size=1)
    conv = tf.lite.TFLiteConverter.from_keras_model(keras.Model(x, body(x)))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(seed)
    conv.representative_dataset = lambda: ([rng.uniform(*data, size=(1, *shape)).astype(np.float32)]
                                           for _ in range(24))
    return conv


def float_interface_model(shape, body, seed: int = 3, output_float: bool = True, data=(-1.0, 1.0)) -> bytes:
    """The converter's commonest output: full-integer quantization with a representative
    dataset but the default float32 interface (no inference_input_type / supported_ops), so
    the graph starts with a QUANTIZE float32->int8 and ends with a DEQUANTIZE; or, with
    output_float=False, float32 in and int8 out. `data`: the representative dataset's range
    (it sets the input's zero point)."""
    conv = calibrated_converter(shape, body, seed, data)
    if not output_float:
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_output_type = tf.int8
    return conv.convert()


FLOAT_INPUT_CASES = {     # (builder, float32 output, the representative data's range)
    "dense-float-out": (lambda L: ((16,), lambda x: L.Dense(10)(L.Dense(12, activation="relu")(x))),
                        True, (-1.0, 1.0)),
    "conv-float-out-zp-128": (lambda L: ((10, 10, 2), lambda x: L.Flatten()(L.Conv2D(3, 3, strides=2)(x))),
                              True, (0.0, 1.0)),
    "cnn1d-int8-out": (cnn1d, False, (-2.0, 2.0)),
    "softmax-int8-out-zp127": (lambda L: ((24,), lambda x: L.Dense(6, activation="softmax")(x)),
                               False, (-1.0, 0.0)),
}


def float_input_model(name: str) -> bytes:
    make, output_float, data = FLOAT_INPUT_CASES[name]
    return float_interface_model(*make(_layers()), output_float=output_float, data=data)


def half_way_floats(scale, n_steps: int = 140) -> np.ndarray:
    """The float32 values where the rounding decides: (k + 1/2) * scale for k over and beyond
    the int8 range, and their float32 neighbours on both sides, plus 0, -0, the clamp's far
    side, values whose quotient leaves the int32 range, +-inf and NaN."""
    s = np.float32(scale)
    v = []
    for k in range(-n_steps - 128, n_steps + 128):
        h = np.float32((k + 0.5) * s)
        v += [h, np.nextafter(h, np.float32(np.inf)), np.nextafter(h, np.float32(-np.inf))]
    v += [0.0, -0.0, 1e-45, -1e-45, 1e10, -1e10, 3e38, -3e38, np.inf, -np.inf, np.nan, -np.nan,
          np.float32(2.0 ** 31) * s, np.float32(-2.0 ** 31) * s]
    return np.array(v, np.float32)


@pytest.mark.parametrize("name", list(FLOAT_INPUT_CASES))
def test_the_float_input_quantize_kernel_is_bit_exact_to_tflm(name):
    """dk_quantize_f32_s8 against TFLM's own QUANTIZE output (every tensor kept) on the
    values where the rounding, the clamp and the int32 conversion decide, for zero points
    of both signs."""
    from firmware_gen import hostlib
    model = float_input_model(name)
    ops = tflm_oracle.read_operators(model)
    assert ops[0].opcode == "QUANTIZE" and ops[0].inputs[0].type == "FLOAT32"
    y = ops[0].outputs[0]
    x = half_way_floats(y.scale)
    n = int(np.prod(ops[0].inputs[0].shape))
    x = np.resize(x, (-(-len(x) // n), n))
    ref = np.concatenate([tflm_oracle.run_capture(model, [row.reshape(ops[0].inputs[0].shape)])[y.index]
                          .reshape(-1) for row in x])
    got = hostlib.quantize(x.reshape(-1), y.scale, y.zero_point)
    np.testing.assert_array_equal(got, ref)
    assert {-128, 127} <= set(ref.tolist()) and len(np.unique(ref)) == 256


def test_the_zero_points_of_the_float_input_cases_differ():
    zps = {name: tflm_oracle.read_operators(float_input_model(name))[0].outputs[0].zero_point
           for name in FLOAT_INPUT_CASES}
    assert zps["conv-float-out-zp-128"] == -128 and zps["softmax-int8-out-zp127"] == 127, zps
    assert min(zps.values()) < 0 < max(zps.values()), zps


@pytest.mark.parametrize("name", list(FLOAT_INPUT_CASES))
def test_a_float_input_is_bit_exact_to_tflm_on_the_host(name, tmp_path):
    """The generated C of a float32-input model: 4 bytes per input value in, the same output
    bytes as TFLM (float32 or int8) out."""
    model = float_input_model(name)
    output_float = FLOAT_INPUT_CASES[name][1]
    ops = [op.opcode for op in tflm_oracle.read_operators(model)]
    assert ops[0] == "QUANTIZE" and ops.count("QUANTIZE") == 1 and (ops[-1] == "DEQUANTIZE") == output_float
    rep = inspect(model, name, allow_float_output=True)
    assert rep["problems"] == [] and rep["input"]["dtype"] == "float32"
    lib, info = host_library(model, tmp_path)
    assert info["input"]["dtype"] == "float32" and info["input"]["scale"] == 0.0
    q = tflm_oracle.read_operators(model)[0].outputs[0]
    assert info["input"]["quantized_by"] == {"scale": float(q.scale), "zero_point": q.zero_point}
    model_c = (tmp_path / "model.c").read_text()
    assert "dk_quantize_f32_s8(" in model_c and "float32 input -> int8" in model_c
    n_in = int(np.prod(info["input"]["shape"]))
    assert f"memcpy((arena + " in model_c and f", in, {4 * n_in});" in model_c
    inp = tflm_oracle.model_inputs(model)[0]
    rng = np.random.default_rng(3)
    n = 32
    lo, hi = (-128 - q.zero_point) * float(q.scale), (127 - q.zero_point) * float(q.scale)
    x = rng.uniform(lo - 0.25 * (hi - lo), hi + 0.25 * (hi - lo), (n, *inp.shape[1:])).astype(np.float32)
    ref = tflm_oracle.run(model, x).reshape(n, -1)
    assert ref.dtype == (np.float32 if output_float else np.int8)
    got = np.zeros_like(ref)
    for i in range(n):
        xi = np.ascontiguousarray(x[i])
        assert lib.model_invoke(xi.ctypes.data_as(ctypes.c_void_p),
                                got[i].ctypes.data_as(ctypes.c_void_p)) == 0
    assert got.tobytes() == ref.tobytes()
    assert len(np.unique(ref, axis=0)) > 1


def rebuilt(model: bytes, edit) -> bytes:
    """The model with its flatbuffer edited by edit(ModelT)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    edit(m)
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_the_audit_accepts_a_float_quantize_only_as_the_first_op_reading_the_input():
    model = float_input_model("dense-float-out")
    rep = audit_user(model)
    assert rep["problems"] == [] and rep["input"]["dtype"] == "float32"
    # our own models stay fully int8
    problems = inspect(model, "m")["problems"]
    assert any("model input" in p and "float32, not int8" in p for p in problems), problems
    assert any("QUANTIZE is a float32→int8 boundary" in p for p in problems), problems

    def second(m):       # the QUANTIZE moved after the FULLY_CONNECTED: no longer first
        ops = m.subgraphs[0].operators
        ops[0], ops[1] = ops[1], ops[0]
    problems = inspect(rebuilt(model, second), "m", allow_float_output=True)["problems"]
    assert any("op 1 QUANTIZE is a float32→int8 boundary inside the graph (only a first QUANTIZE" in p
               for p in problems), problems
    with pytest.raises(UserError) as err:
        audit_user(rebuilt(model, second))
    assert "\n" not in str(err.value) and "cannot be deployed" in str(err.value)


# --- a uint8 input or output (a first QUANTIZE uint8 -> int8, a last QUANTIZE int8 -> uint8) ------

def uint8_interface_model(shape, body, input_type, output_type, seed: int = 3, data=(0.0, 1.0)) -> bytes:
    """TensorFlow's post-training quantization tutorial: full-integer quantization with
    inference_input_type / inference_output_type = tf.uint8 (or float32 on one side: the
    converter's default there)."""
    conv = calibrated_converter(shape, body, seed, data)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = input_type
    conv.inference_output_type = output_type
    return conv.convert()


UINT8_CASES = {     # (builder, input type, output type, the representative data's range)
    "dense-u8-u8": (lambda L: ((16,), lambda x: L.Dense(10)(L.Dense(12, activation="relu")(x))),
                    "uint8", "uint8", (0.0, 1.0)),
    "conv-u8-float": (lambda L: ((10, 10, 2), lambda x: L.Flatten()(L.Conv2D(3, 3, strides=2)(x))),
                      "uint8", "float32", (-1.0, 1.0)),
    "cnn1d-float-u8": (cnn1d, "float32", "uint8", (-2.0, 2.0)),
    "softmax-u8-int8": (lambda L: ((24,), lambda x: L.Dense(6, activation="softmax")(x)),
                        "uint8", "int8", (-1.0, 0.0)),
    "pool-int8-u8": (lambda L: ((12, 12, 1), lambda x: L.Flatten()(L.MaxPooling2D(2)(
                         L.Conv2D(4, 3, activation="relu")(x)))), "int8", "uint8", (-1.0, 1.0)),
}


def uint8_model(name: str) -> bytes:
    make, in_type, out_type, data = UINT8_CASES[name]
    return uint8_interface_model(*make(_layers()), getattr(tf, in_type), getattr(tf, out_type), data=data)


def model_inputs_of(model: bytes, n: int, seed: int) -> np.ndarray:
    """n random inputs of the model's type: uint8 and int8 over their whole range, float32
    over the first QUANTIZE's int8 range and a quarter beyond it at each end."""
    inp = tflm_oracle.model_inputs(model)[0]
    rng = np.random.default_rng(seed)
    shape = (n, *inp.shape[1:])
    if inp.type == "FLOAT32":
        q = tflm_oracle.read_operators(model)[0].outputs[0]
        lo, hi = (-128 - q.zero_point) * float(q.scale), (127 - q.zero_point) * float(q.scale)
        return rng.uniform(lo - 0.25 * (hi - lo), hi + 0.25 * (hi - lo), shape).astype(np.float32)
    dtype = np.uint8 if inp.type == "UINT8" else np.int8
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max + 1, size=shape, dtype=np.int16).astype(dtype)
    x[0], x[1] = info.min, info.max           # saturation at both ends
    return x


def requantize_pair(in_scale, in_zp, mid_scale, mid_zp, out_scale, out_zp) -> bytes:
    """A model of just QUANTIZE uint8 -> int8 -> uint8 over 256 values, quantized as given:
    the dense-u8-u8 model with its middle layers cut out and its three tensors
    requantized (TFLM runs any such pair; the converter itself makes only the same-scale,
    zero-points-128-apart case)."""
    model = uint8_model("dense-u8-u8")

    def edit(m):
        g = m.subgraphs[0]
        first, last = g.operators[0], g.operators[-1]
        last.inputs = np.array([first.outputs[0]], np.int32)
        g.operators = [first, last]
        for j, (scale, zp) in ((first.inputs[0], (in_scale, in_zp)), (first.outputs[0], (mid_scale, mid_zp)),
                               (last.outputs[0], (out_scale, out_zp))):
            t = g.tensors[j]
            t.shape = np.array([1, 256], np.int32)
            t.shapeSignature = None
            t.quantization.scale = [np.float32(scale)]
            t.quantization.zeroPoint = [zp]
    return rebuilt(model, edit)


# (uint8 input scale, zero point), (int8 scale, zero point), (uint8 output scale, zero point)
REQUANTIZE_PAIRS = {
    "same-scale-flip": ((0.02, 128), (0.02, 0), (0.02, 128)),
    "converter-zp0": ((0.0039, 0), (0.0039, -128), (0.0039, 0)),
    "rescaled": ((0.0173, 37), (0.011, -5), (0.0291, 200)),
    "widening": ((0.05, 250), (0.0031, 90), (0.001, 200)),
}


@pytest.mark.parametrize("name", list(REQUANTIZE_PAIRS))
def test_the_uint8_requantize_kernels_are_bit_exact_to_tflm(name):
    """dk_requantize_u8_s8 and dk_requantize_s8_u8 against TFLM's own QUANTIZE tensors for
    every uint8 input value: the converter's case (equal scales, zero points 128 apart: the
    top bit flips) and rescalings that round and clamp at both ends of both types."""
    from firmware_gen import hostlib, quant
    (s_in, z_in), (s_mid, z_mid), (s_out, z_out) = REQUANTIZE_PAIRS[name]
    model = requantize_pair(s_in, z_in, s_mid, z_mid, s_out, z_out)
    ops = tflm_oracle.read_operators(model)
    assert [(op.inputs[0].type, op.outputs[0].type) for op in ops] == [("UINT8", "INT8"), ("INT8", "UINT8")]
    x = np.arange(256, dtype=np.uint8).reshape(1, 256)
    got = tflm_oracle.run_capture(model, [x])
    mid_ref, out_ref = got[ops[0].outputs[0].index].reshape(-1), got[ops[1].outputs[0].index].reshape(-1)
    assert mid_ref.dtype == np.int8 and out_ref.dtype == np.uint8
    mid = hostlib.requantize_u8_s8(x.reshape(-1), quant.prepare_requantize(s_in, z_in, s_mid, z_mid))
    assert mid.dtype == np.int8 and mid.tobytes() == mid_ref.tobytes()
    out = hostlib.requantize_s8_u8(mid, quant.prepare_requantize(s_mid, z_mid, s_out, z_out))
    assert out.dtype == np.uint8 and out.tobytes() == out_ref.tobytes()
    if name != "widening":
        assert len(np.unique(mid_ref)) > 100          # much of the range, not a constant
    else:
        assert {-128, 127} <= set(mid_ref.tolist()) and {0, 255} <= set(out_ref.tolist())
    if name == "same-scale-flip":
        assert mid.tobytes() == (x.reshape(-1) ^ 0x80).tobytes() and out.tobytes() == x.tobytes()


def test_the_converter_gives_a_uint8_interface_the_same_scale_and_zero_points_128_apart():
    for name, (_, in_type, out_type, _) in UINT8_CASES.items():
        ops = tflm_oracle.read_operators(uint8_model(name))
        pairs = ([(ops[0].inputs[0], ops[0].outputs[0])] if in_type == "uint8" else []) + \
                ([(ops[-1].outputs[0], ops[-1].inputs[0])] if out_type == "uint8" else [])
        assert pairs, name
        for u, s in pairs:
            assert u.type == "UINT8" and s.type == "INT8"
            assert float(u.scale) == float(s.scale) and u.zero_point - s.zero_point == 128, name


@pytest.mark.parametrize("name", list(UINT8_CASES))
def test_a_uint8_interface_is_bit_exact_to_tflm_on_the_host(name, tmp_path):
    """The generated C of a model with a uint8 input and/or output (the other side int8 or
    float32): the same output bytes as TFLM for random inputs over the whole uint8 range."""
    _, in_type, out_type, _ = UINT8_CASES[name]
    model = uint8_model(name)
    ops = [op.opcode for op in tflm_oracle.read_operators(model)]
    assert (ops[0] == "QUANTIZE") == (in_type != "int8")
    assert ops[-1] == {"uint8": "QUANTIZE", "float32": "DEQUANTIZE", "int8": ops[-1]}[out_type]
    rep = inspect(model, name, allow_float_output=True)
    assert rep["problems"] == [] and rep["input"]["dtype"] == in_type and rep["output"]["dtype"] == out_type
    assert audit_user(model)["problems"] == []
    codegen.check(model, name)
    lib, info = host_library(model, tmp_path)
    assert info["input"]["dtype"] == in_type and info["output"]["dtype"] == out_type
    model_c = (tmp_path / "model.c").read_text()
    for kernel, used in (("dk_requantize_u8_s8(", in_type == "uint8"), ("dk_requantize_s8_u8(", out_type == "uint8")):
        assert (kernel in model_c) == used, kernel
    if in_type == "uint8":
        inp = tflm_oracle.model_inputs(model)[0]
        assert info["input"]["scale"] == pytest.approx(float(inp.scale)) and info["input"]["zero_point"] == inp.zero_point
        assert "uint8 -> int8, clamped to the int8 range (same scale, zero points 128 apart" in model_c
    if out_type == "uint8":
        assert "int8 -> uint8, clamped to the uint8 range" in model_c
        assert 0 <= info["output"]["zero_point"] <= 255
    n = 48
    x = model_inputs_of(model, n, seed=5)
    ref = tflm_oracle.run(model, x).reshape(n, -1)
    assert ref.dtype == {"uint8": np.uint8, "float32": np.float32, "int8": np.int8}[out_type]
    got = np.zeros_like(ref)
    for i in range(n):
        xi = np.ascontiguousarray(x[i])
        assert lib.model_invoke(xi.ctypes.data_as(ctypes.c_void_p),
                                got[i].ctypes.data_as(ctypes.c_void_p)) == 0
    assert got.tobytes() == ref.tobytes()
    assert len(np.unique(ref, axis=0)) > n // 2


def test_the_audit_accepts_uint8_only_at_the_models_interface():
    model = uint8_model("dense-u8-u8")
    # our own models stay fully int8
    problems = inspect(model, "m")["problems"]
    assert any("model input" in p and "uint8, not int8" in p for p in problems), problems
    assert any("model output" in p and "uint8, not int8" in p for p in problems), problems

    def second(m):       # the first QUANTIZE moved after the FULLY_CONNECTED: no longer first
        ops = m.subgraphs[0].operators
        ops[0], ops[1] = ops[1], ops[0]
    problems = inspect(rebuilt(model, second), "m", allow_float_output=True)["problems"]
    assert any("op 1 QUANTIZE is a uint8→int8 boundary inside the graph (only a first QUANTIZE" in p
               for p in problems), problems


def test_a_uint8_tensor_inside_the_graph_is_one_line():
    """The compiled runtime takes uint8 only as the model's input or output: a uint8 island
    (QUANTIZE int8 -> uint8 -> int8 inside the graph, which TFLM runs) is refused in one line,
    and the audit names it."""
    import copy

    def island(m):      # uint8 in -> int8 -> uint8 -> int8 out
        g = m.subgraphs[0]
        first, last = g.operators
        t = copy.deepcopy(g.tensors[first.outputs[0]])
        t.name = b"island_out"
        g.tensors.append(t)
        op = copy.deepcopy(first)
        op.inputs, op.outputs = np.array([last.outputs[0]], np.int32), np.array([len(g.tensors) - 1], np.int32)
        g.operators.append(op)
        g.outputs = np.array([len(g.tensors) - 1], np.int32)
    model = rebuilt(requantize_pair(0.02, 128, 0.02, 0, 0.02, 128), island)
    x = np.arange(256, dtype=np.uint8).reshape(1, 256)
    assert tflm_oracle.run(model, x).reshape(-1).tolist() == list(range(-128, 128))
    with pytest.raises(UserError, match="op 1 QUANTIZE .* to uint8 does not write the model's output") as exc:
        codegen.check(model, "m.tflite")
    assert "\n" not in str(exc.value)
    problems = inspect(model, "m", allow_float_output=True)["problems"]
    assert any("op 1 QUANTIZE is a int8→uint8 boundary inside the graph" in p for p in problems), problems


def test_the_tflm_back_end_names_the_compiled_runtime_for_a_uint8_interface():
    from firmware_gen import tflm_backend
    with pytest.raises(UserError, match=r"input is UINT8 \(a first QUANTIZE\).*compiled runtime.*takes a uint8 input"):
        tflm_backend._io_tensors(uint8_model("dense-u8-u8"))
    with pytest.raises(UserError, match=r"output is UINT8 \(a final QUANTIZE\).*takes a uint8 output"):
        tflm_backend._io_tensors(uint8_model("pool-int8-u8"))


# --- several outputs (one frame: the outputs one after another, in the model's order) ------------

def two_head_model(output_type=None, seed: int = 3) -> bytes:
    """A shared trunk and two Dense heads of different sizes: int8 outputs, or float32 / uint8
    ones (a DEQUANTIZE / QUANTIZE per head)."""
    import keras
    L = _layers()
    keras.utils.set_random_seed(seed)
    x = keras.Input((16,), batch_size=1)
    h = L.Dense(12, activation="relu")(x)
    model = keras.Model(x, [L.Dense(5, name="head_a")(h), L.Dense(3, activation="sigmoid", name="head_b")(h)])
    return to_int8(model, (16,), seed, output_type=output_type)


MULTI_OUTPUT_CASES = {"int8": None, "float32": "float32", "uint8": "uint8"}


def tflm_each_output(model: bytes, x: np.ndarray) -> list[np.ndarray]:
    """Every output of the TFLM host interpreter for each input, asked for one by one
    (get_output(j)), as [n, values of output j] per output, in the model's order."""
    interp = tflm_oracle.interpreter(model)
    n_out = len(tflm_oracle.model_outputs(model))
    rows = []
    for i in range(len(x)):
        interp.set_input(x[i:i + 1], 0)
        interp.invoke()
        rows.append([np.asarray(interp.get_output(j)).reshape(-1).copy() for j in range(n_out)])
    return [np.stack([r[j] for r in rows]) for j in range(n_out)]


@pytest.mark.parametrize("name", list(MULTI_OUTPUT_CASES))
def test_several_outputs_are_bit_exact_to_tflm_on_the_host(name, tmp_path):
    """Two Dense heads: the generated C writes both outputs into one frame, in the model's
    output order, each equal to the bytes TFLM gives for that output."""
    out_type = MULTI_OUTPUT_CASES[name]
    model = two_head_model(getattr(tf, out_type) if out_type else None)
    outs = tflm_oracle.model_outputs(model)
    assert len(outs) == 2 and sorted(int(np.prod(t.shape)) for t in outs) == [3, 5]
    assert all(t.type == name.upper() for t in outs)
    assert audit_user(model)["problems"] == []
    codegen.check(model, name)
    lib, info = host_library(model, tmp_path)
    sizes = [int(np.prod(t.shape)) for t in outs]
    item = 4 if name == "float32" else 1
    assert info["output"] == {"shape": [1, 8], "dtype": name, "scale": 0.0, "zero_point": 0}
    assert [(o["shape"], o["dtype"], o["offset"]) for o in info["outputs"]] == \
        [(list(outs[0].shape), name, 0), (list(outs[1].shape), name, item * sizes[0])]
    model_c = (tmp_path / "model.c").read_text()
    assert "the 2 outputs one after another, in the model's order" in model_c
    assert f"memcpy(out + {item * sizes[0]}, " in model_c
    n = 32
    x = model_inputs_of(model, n, seed=4)
    each = tflm_each_output(model, x)
    ref = tflm_oracle.run(model, x)
    assert ref.shape == (n, 8) and ref.tobytes() == np.concatenate(each, axis=1).tobytes()
    got = np.zeros_like(ref)
    for i in range(n):
        xi = np.ascontiguousarray(x[i])
        assert lib.model_invoke(xi.ctypes.data_as(ctypes.c_void_p),
                                got[i].ctypes.data_as(ctypes.c_void_p)) == 0
    at = 0
    for j, want in enumerate(each):       # each output on its own
        assert got[:, at:at + sizes[j]].tobytes() == want.tobytes(), j
        assert len(np.unique(want, axis=0)) > 1, j
        at += sizes[j]


@pytest.mark.parametrize("reader", ["conv", "in_place"])
def test_an_output_a_later_layer_reads_too_stays_intact(reader, tmp_path):
    """A model returning a feature map and a head computed from it: the feature map is an
    output and an input of later layers (a conv streaming over it; a LEAKY_RELU, which may
    write over its input in place); its bytes must survive until they are copied out."""
    import keras
    L = _layers()
    keras.utils.set_random_seed(5)
    if reader == "conv":
        x = keras.Input((24, 1), batch_size=1)
        f = L.Conv1D(6, 3, activation="relu")(x)
        g = L.Conv1D(6, 3, padding="same")(f)
        model = to_int8(keras.Model(x, [f, L.Flatten()(L.ReLU()(g))]), (24, 1), seed=5)
        reads = ("CONV_2D",)
    else:
        x = keras.Input((16,), batch_size=1)
        f = L.Dense(8)(x)
        model = to_int8(keras.Model(x, [f, L.Dense(3)(L.LeakyReLU(negative_slope=0.1)(f))]), (16,), seed=5)
        reads = ("LEAKY_RELU",)
    outs = tflm_oracle.model_outputs(model)
    ops = tflm_oracle.read_operators(model)
    # the feature map output may be a RESHAPE of the tensor the later layer reads (same bytes)
    src = {op.outputs[0].index: op.inputs[0].index for op in ops if op.opcode == "RESHAPE"}
    shared = {src.get(t.index, t.index) for t in outs} | {t.index for t in outs}
    assert len(outs) == 2 and any(op.opcode in reads and op.inputs[0].index in shared for op in ops)
    lib, info = host_library(model, tmp_path)
    n = 16
    x = model_inputs_of(model, n, seed=6)
    each = tflm_each_output(model, x)
    want = np.concatenate(each, axis=1)
    got = np.zeros_like(want)
    for i in range(n):
        xi = np.ascontiguousarray(x[i])
        assert lib.model_invoke(xi.ctypes.data_as(ctypes.c_void_p),
                                got[i].ctypes.data_as(ctypes.c_void_p)) == 0
    assert got.tobytes() == want.tobytes()
    assert all(len(np.unique(w, axis=0)) > 1 for w in each)


def test_outputs_of_different_types_are_one_line(tmp_path, capsys, monkeypatch):
    """The output frame carries one element type: an int8 head beside a float32 one (the
    converter never makes it; here one head's DEQUANTIZE is cut out) is refused in one line,
    by codegen, by the TFLM runner and by `benchmark --model` (exit 2, before any board)."""
    model = two_head_model(tf.float32)
    ops = tflm_oracle.read_operators(model)
    deq = next(op for op in ops if op.opcode == "DEQUANTIZE")

    def cut(m):
        g = m.subgraphs[0]
        g.outputs = np.array([deq.inputs[0].index if j == deq.outputs[0].index else j for j in g.outputs],
                             np.int32)
        g.operators = [op for k, op in enumerate(g.operators) if k != deq.index]
    mixed = rebuilt(model, cut)
    assert sorted(t.type for t in tflm_oracle.model_outputs(mixed)) == ["FLOAT32", "INT8"]
    with pytest.raises(UserError, match=r"2 outputs are of different types \(float32, int8\)") as exc:
        codegen.check(mixed, "m.tflite")
    assert "\n" not in str(exc.value)
    with pytest.raises(UserError, match=r"outputs are of different types \(float32, int8\)"):
        tflm_oracle.run(mixed, np.zeros((1, 16), np.int8))
    _, build, common = user_model_build(tmp_path, monkeypatch, mixed, "mixed")
    code, out, err = run_cli(capsys, "benchmark", *common)
    assert code == 2 and "outputs are of different types (float32, int8)" in err
    assert "Traceback" not in err and not (build / "reports" / "benchmark.json").exists()


def test_the_harness_stores_an_answer_of_outputs_larger_than_its_default():
    """Two 9,000-value heads on a 16-value input: 18,000 output bytes in one frame, more
    than the harness's default 16 KB answer store, which the small input alone did not
    raise (HIL then found no batch that fits); the two 5-value heads keep the default."""
    from firmware_gen.build import harness_defines
    import keras
    L = _layers()
    keras.utils.set_random_seed(4)
    x = keras.Input((16,), batch_size=1)
    big = to_int8(keras.Model(x, [L.Dense(9000)(x), L.Dense(9000)(x)]), (16,), 4)
    assert sum(int(np.prod(t.shape)) for t in tflm_oracle.model_outputs(big)) == 18000
    assert "PROTO_RESPONSE_BYTES=18176u" in harness_defines(big, monitor=False)
    small = two_head_model()
    assert not any(d.startswith("PROTO_") for d in harness_defines(small, monitor=False))


def test_firmware_and_hil_with_a_two_output_model_are_bit_exact_on_the_board(tmp_path, capsys, monkeypatch):
    """firmware --model on two Dense heads: the card lists both outputs, the boot self-test
    compares the whole frame, HIL and --debug find TFLM's bytes for every output."""
    model = two_head_model()
    outs = tflm_oracle.model_outputs(model)
    model_file, build, common = user_model_build(tmp_path, monkeypatch, model, "heads")
    code, out, err = run_cli(capsys, "firmware", *common)
    assert code == 0, err
    rep = json.loads((build / "reports" / "firmware.json").read_text())
    assert rep["model"]["output"]["shape"] == [1, 8] and rep["model"]["output"]["dtype"] == "int8"
    assert [o["shape"] for o in rep["model"]["outputs"]] == [list(t.shape) for t in outs]
    assert [o["zero_point"] for o in rep["model"]["outputs"]] == [t.zero_point for t in outs]
    st = rep["selftest"]
    assert st["passed"], st
    mi = hil.model_input_of(model)
    x0 = hil.random_inputs(np.random.default_rng([SEED, stage.SELFTEST_STREAM]), mi, 1)
    expected = np.concatenate([o.reshape(-1) for o in tflm_each_output(model, x0)])
    assert st["expected"] == expected.tolist() and "8 outputs equal TFLM" in st["line"]

    elf = build / "firmware" / "mps2-an386" / "firmware.elf"
    with boards.Emulator("mps2-an386", elf) as emu:
        from runner.link import Device
        with Device(emu.url, timeout=5) as dev:
            info = dev.info()
            y, _ = dev.infer(x0[0])
        assert info.output.shape == (8,) and info.output.size == 8
        assert y.tobytes() == expected.tobytes()
        code, out, err = run_cli(capsys, "hil", *common, "--port", emu.url, "--limit", "40")
        assert code == 0, err
        assert "40/40 vectors bit-exact on mps2-an386" in out
        code, out, err = run_cli(capsys, "hil", *common, "--port", emu.url, "--debug", "2")
        assert code == 0, err + out
        dbg = json.loads((build / "reports" / "hil_debug.json").read_text())
        assert dbg["output_equal"] is True and dbg["first_difference"] is None
        assert all(row["status"] == "equal" for row in dbg["layers"]), dbg["layers"]
        assert len(dbg["device_output"]) == 8


def audit_user(model: bytes) -> dict:
    from quantize.audit import audit
    return audit(model, "m.tflite", verify=False, user=True)


# --- end to end on the emulated board -------------------------------------------------------------

def run_cli(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def user_model_build(tmp_path, monkeypatch, model: bytes, name: str = "model") -> tuple[Path, Path, list]:
    """The model as tmp_path/<name>.tflite, an empty build dir (no data, no trained model:
    nothing of ours) and the CLI arguments that point the stages at both."""
    model_file = tmp_path / f"{name}.tflite"
    model_file.write_bytes(model)
    build = tmp_path / "build"
    monkeypatch.setenv("DRSN_EDGE_BUILD", str(build))
    return model_file, build, ["--config", SMOKE, "--build-dir", str(build), "--model", str(model_file)]


@pytest.mark.parametrize("name", list(BOARD_MODELS))
def test_firmware_and_hil_with_model_are_bit_exact_on_the_board(name, tmp_path, capsys,
                                                                 monkeypatch):
    make, limit, ops = BOARD_MODELS[name]
    model = keras_model(*make(_layers()))
    counts = inspect(model, name)["op_counts"]
    assert ops <= set(counts), counts
    models = {name: model}
    model_file, build, common = user_model_build(tmp_path, monkeypatch, models[name], name)

    code, out, err = run_cli(capsys, "firmware", *common)
    assert code == 0, err
    rep = json.loads((build / "reports" / "firmware.json").read_text())
    inp = tflm_oracle.model_inputs(models[name])[0]
    assert rep["model"]["path"] == str(model_file) and rep["model"]["source"] == "user"
    assert rep["model"]["input"]["shape"] == list(inp.shape)
    assert rep["model"]["input"]["scale"] == pytest.approx(float(inp.scale))
    assert rep["model"]["input"]["zero_point"] == inp.zero_point
    n_out = int(np.prod(rep["model"]["output"]["shape"]))
    st = rep["selftest"]
    assert st["passed"] and st["input_kind"] == "random" and st["label"] is None
    # the self-test input is the seeded random vector, and the board's answer TFLM's
    rng = np.random.default_rng([SEED, stage.SELFTEST_STREAM])
    expected_in = rng.integers(-128, 128, size=tuple(inp.shape), dtype=np.int16).astype(np.int8)
    assert st["expected"] == tflm_oracle.run(models[name], expected_in).reshape(-1).tolist()
    assert len(st["expected"]) == n_out
    assert f"{n_out} outputs equal TFLM" in st["line"] and name in st["line"]

    elf = build / "firmware" / "mps2-an386" / "firmware.elf"
    with boards.Emulator("mps2-an386", elf) as emu:
        code, out, err = run_cli(capsys, "hil", *common, "--port", emu.url, "--limit", str(limit))
    assert code == 0, err
    assert f"{limit}/{limit} vectors bit-exact on mps2-an386" in out
    h = json.loads((build / "reports" / "hil.json").read_text())
    assert h["input_kind"] == "random" and h["n_vectors"] == limit and h["bit_exact"] is True
    # the outputs depend on the input (a model stuck on one answer proves little)
    outs = tflm_oracle.run(model, hil.random_vectors(
        hil.ModelInput(tuple(inp.shape), float(inp.scale), int(inp.zero_point)), 4, SEED).x)
    assert len(np.unique(outs.reshape(4, -1), axis=0)) > 1
    assert h["accuracy"] is None and h["confusion_device"] is None and h["classes"] is None
    md = (build / "reports" / "hil.md").read_text()
    assert "input kind: random" in md
    assert "| condition | vectors | bit-exact |\n" in md      # no accuracy columns: no labels


def test_firmware_and_hil_with_a_float_output_model_are_bit_exact_on_the_board(tmp_path, capsys,
                                                                              monkeypatch):
    """A model converted with a float32 output: the model card says float32, the boot
    self-test compares the float bytes, and HIL finds every output's bytes equal TFLM's."""
    model = float_output_model("dense-classifier")
    model_file, build, common = user_model_build(tmp_path, monkeypatch, model, "float_out")
    code, out, err = run_cli(capsys, "firmware", *common)
    assert code == 0, err
    rep = json.loads((build / "reports" / "firmware.json").read_text())
    assert rep["model"]["output"]["dtype"] == "float32" and rep["model"]["input"]["dtype"] == "int8"
    assert rep["model"]["op_counts"].get("DEQUANTIZE") == 1
    st = rep["selftest"]
    assert st["passed"], st
    inp = tflm_oracle.model_inputs(model)[0]
    rng = np.random.default_rng([SEED, stage.SELFTEST_STREAM])
    expected_in = rng.integers(-128, 128, size=tuple(inp.shape), dtype=np.int16).astype(np.int8)
    expected = tflm_oracle.run(model, expected_in).reshape(-1)
    assert st["expected"] == expected.tolist() and "10 outputs equal TFLM" in st["line"]
    selftest_c = next((build / "firmware").glob("*/src/selftest.c")).read_text()
    assert "const int8_t selftest_expected[40]" in selftest_c    # 10 floats as their bytes

    elf = build / "firmware" / "mps2-an386" / "firmware.elf"
    with boards.Emulator("mps2-an386", elf) as emu:
        from runner.link import Device
        with Device(emu.url, timeout=5) as dev:
            info = dev.info()
            y, _ = dev.infer(expected_in.reshape(inp.shape[1:]))
        assert info.output.size == 40 and info.output.dtype == np.float32
        assert y.dtype == np.float32 and y.tobytes() == expected.tobytes()
        code, out, err = run_cli(capsys, "hil", *common, "--port", emu.url, "--limit", "40")
    assert code == 0, err
    assert "40/40 vectors bit-exact on mps2-an386" in out
    h = json.loads((build / "reports" / "hil.json").read_text())
    assert h["bit_exact"] is True and h["n_vectors"] == 40
    # layer by layer, the float32 output compared as bytes
    with boards.Emulator("mps2-an386", elf) as emu:
        code, out, err = run_cli(capsys, "hil", *common, "--port", emu.url, "--debug", "3")
    assert code == 0, err + out
    dbg = json.loads((build / "reports" / "hil_debug.json").read_text())
    assert dbg["output_equal"] is True and dbg["first_difference"] is None
    assert dbg["layers"][-1]["status"] == "equal" and dbg["layers"][-1]["size"] == 10
    assert all(isinstance(v, float) for v in dbg["device_output"])


@pytest.mark.parametrize("name,board", [("dense-float-out", "mps2-an386"),
                                        ("cnn1d-int8-out", "mps2-an386"),
                                        ("dense-float-out", "lm3s6965evb")])
def test_firmware_and_hil_with_a_float_input_model_are_bit_exact_on_the_board(name, board, tmp_path, capsys,
                                                                             monkeypatch):
    """The converter's default float32 interface: the board takes float32 bytes (4 per value)
    and quantizes them as TFLM does, on the Cortex-M4F's FPU and in the Cortex-M3's soft-float
    alike; the self-test input, the HIL vectors (seeded random floats over the int8 range and
    beyond) and a --vectors file of floats all give TFLM's output bytes."""
    model = float_input_model(name)
    output_float = FLOAT_INPUT_CASES[name][1]
    model_file, build, common = user_model_build(tmp_path, monkeypatch, model, name)
    code, out, err = run_cli(capsys, "firmware", *common, "--board", board)
    assert code == 0, err
    rep = json.loads((build / "reports" / "firmware.json").read_text())
    mi = hil.model_input_of(model)
    assert mi.dtype == "float32"
    assert rep["model"]["input"]["dtype"] == "float32"
    assert rep["model"]["input"]["quantized_by"] == {"scale": pytest.approx(mi.scale), "zero_point": mi.zero_point}
    assert rep["model"]["output"]["dtype"] == ("float32" if output_float else "int8")
    assert rep["model"]["op_counts"].get("QUANTIZE") == 1
    st = rep["selftest"]
    assert st["passed"], st
    n_in = int(np.prod(mi.shape))
    rng = np.random.default_rng([SEED, stage.SELFTEST_STREAM])
    from drsn_edge.int8 import random_float_inputs
    x0 = random_float_inputs(rng, (1, *mi.shape), mi.scale, mi.zero_point)
    expected = tflm_oracle.run(model, x0).reshape(-1)
    assert st["expected"] == expected.tolist()
    selftest_c = next((build / "firmware").glob("*/src/selftest.c")).read_text()
    assert f"const int8_t selftest_input[{4 * n_in}]" in selftest_c and "float32 values" in selftest_c
    md = (build / "reports" / "firmware.md").read_text()
    assert f"float32 (quantized on the board: scale {mi.scale:.6g}, zero point {mi.zero_point})" in md

    elf = build / "firmware" / board / "firmware.elf"
    with boards.Emulator(board, elf) as emu:
        from runner.link import Device
        with Device(emu.url, timeout=5) as dev:
            info = dev.info()
            y, _ = dev.infer(x0[0])
            with pytest.raises(UserError, match="inputs must be float32"):
                dev.infer(np.zeros(mi.shape, np.int8))
        assert info.input.size == 4 * n_in and info.input.dtype == np.float32
        assert y.tobytes() == expected.tobytes()
        code, out, err = run_cli(capsys, "hil", *common, "--port", emu.url, "--limit", "40")
        assert code == 0, err
        assert "40/40 vectors bit-exact on " + board in out
        h = json.loads((build / "reports" / "hil.json").read_text())
        assert h["bit_exact"] is True and h["input_kind"] == "random"
        # the random floats cover the int8 range and go beyond it at both ends (the clamp)
        vs = hil.random_vectors(mi, 40, SEED)
        assert vs.x.dtype == np.float32
        lo, hi = (-128 - mi.zero_point) * mi.scale, (127 - mi.zero_point) * mi.scale
        assert vs.x.min() < lo and vs.x.max() > hi
        assert ((vs.x >= lo) & (vs.x <= hi)).mean() > 0.7
        # layer by layer: the board's QUANTIZE of the float input equals TFLM's
        code, out, err = run_cli(capsys, "hil", *common, "--port", emu.url, "--debug", "2")
        assert code == 0, err + out
        dbg = json.loads((build / "reports" / "hil_debug.json").read_text())
        assert dbg["output_equal"] is True and dbg["first_difference"] is None
        assert dbg["layers"][0]["name"].startswith("0:quantize:") and dbg["layers"][0]["status"] == "equal"
        # a --vectors file of floats, with the exact half-way points of the rounding
        xs = np.resize(half_way_floats(mi.scale, 4), (6, *mi.shape))
        xs = np.where(np.isfinite(xs), xs, 0.0).astype(np.float32)
        vec = tmp_path / "floats.npz"
        np.savez(vec, x=xs)
        code, out, err = run_cli(capsys, "hil", *common, "--port", emu.url, "--vectors", str(vec))
        assert code == 0, err
        assert "6/6 vectors bit-exact on " + board in out
        h = json.loads((build / "reports" / "hil.json").read_text())
        assert h["input_kind"] == "file" and h["bit_exact"] is True
        # int8 vectors for a float32 input: one line, exit 2
        np.savez(vec, x=np.zeros((2, *mi.shape), np.int8))
        code, out, err = run_cli(capsys, "hil", *common, "--port", emu.url, "--vectors", str(vec))
        assert code == 2 and "takes float32 inputs" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("name", ["dense-u8-u8", "conv-u8-float", "cnn1d-float-u8"])
def test_firmware_and_hil_with_a_uint8_interface_model_are_bit_exact_on_the_board(name, tmp_path, capsys,
                                                                                 monkeypatch):
    """TensorFlow's post-training quantization tutorial's model (uint8 in and out), and uint8
    on one side with float32 on the other: firmware --model builds, the boot self-test passes on
    seeded random inputs over the whole uint8 range, and HIL and --debug find TFLM's bytes."""
    _, in_type, out_type, _ = UINT8_CASES[name]
    model = uint8_model(name)
    model_file, build, common = user_model_build(tmp_path, monkeypatch, model, "u8")
    code, out, err = run_cli(capsys, "firmware", *common)
    assert code == 0, err
    rep = json.loads((build / "reports" / "firmware.json").read_text())
    assert rep["model"]["input"]["dtype"] == in_type and rep["model"]["output"]["dtype"] == out_type
    mi = hil.model_input_of(model)
    assert mi.dtype == in_type
    st = rep["selftest"]
    assert st["passed"], st
    x0 = hil.random_inputs(np.random.default_rng([SEED, stage.SELFTEST_STREAM]), mi, 1)
    expected = tflm_oracle.run(model, x0).reshape(-1)
    assert expected.dtype == {"uint8": np.uint8, "float32": np.float32}[out_type]
    assert st["expected"] == expected.tolist()
    n_out = expected.size
    assert f"{n_out} outputs equal TFLM" in st["line"]
    selftest_c = next((build / "firmware").glob("*/src/selftest.c")).read_text()
    if in_type == "uint8":
        assert x0.dtype == np.uint8 and x0.max() > 127            # the top half of the range too
        assert "seeded random uint8 values" in selftest_c
        assert f"const int8_t selftest_input[{x0.size}]" in selftest_c
    if out_type == "uint8":
        assert "The output is uint8" in selftest_c and f"const int8_t selftest_expected[{n_out}]" in selftest_c

    elf = build / "firmware" / "mps2-an386" / "firmware.elf"
    with boards.Emulator("mps2-an386", elf) as emu:
        from runner.link import Device
        with Device(emu.url, timeout=5) as dev:
            y, _ = dev.infer(x0[0])
        assert y.tobytes() == expected.tobytes()
        code, out, err = run_cli(capsys, "hil", *common, "--port", emu.url, "--limit", "40")
        assert code == 0, err
        assert "40/40 vectors bit-exact on mps2-an386" in out
        h = json.loads((build / "reports" / "hil.json").read_text())
        assert h["bit_exact"] is True and h["input_kind"] == "random"
        vs = hil.random_vectors(mi, 40, SEED)
        assert vs.x.dtype == {"uint8": np.uint8, "float32": np.float32}[in_type]
        code, out, err = run_cli(capsys, "hil", *common, "--port", emu.url, "--debug", "1")
        assert code == 0, err + out
        dbg = json.loads((build / "reports" / "hil_debug.json").read_text())
        assert dbg["output_equal"] is True and dbg["first_difference"] is None
        assert all(row["status"] == "equal" for row in dbg["layers"]), dbg["layers"]
        if out_type == "uint8":
            assert dbg["device_output"] == dbg["host_output"]
        if in_type == "uint8":
            # a --vectors file of uint8 inputs, then one of int8: one line, exit 2
            vec = tmp_path / "u8.npz"
            np.savez(vec, x=np.arange(6 * x0.size).reshape(6, *mi.shape).astype(np.uint8))
            code, out, err = run_cli(capsys, "hil", *common, "--port", emu.url, "--vectors", str(vec))
            assert code == 0, err
            assert "6/6 vectors bit-exact on mps2-an386" in out
            np.savez(vec, x=np.zeros((2, *mi.shape), np.int8))
            code, out, err = run_cli(capsys, "hil", *common, "--port", emu.url, "--vectors", str(vec))
            assert code == 2 and "takes uint8 inputs" in err and "Traceback" not in err
            assert len(err.strip().splitlines()) == 1, err


# model, and the bytes of its expected output frame in the image
BENCH_INTERFACES = {
    "float32": (lambda: float_input_model("dense-float-out"), 40),   # 10 float32 outputs
    "uint8": (lambda: uint8_model("dense-u8-u8"), 10),                # 10 uint8 outputs
    "two-outputs": (lambda: two_head_model(), 8),                     # int8 heads of 5 and 3
}


@pytest.mark.parametrize("kind", list(BENCH_INTERFACES))
def test_benchmark_with_a_model_of_another_interface_checks_its_bytes(kind, tmp_path_factory, capsys,
                                                                       monkeypatch):
    """benchmark --model on float32 or uint8 in and out, or on two heads: the image holds the
    random inputs and TFLM's whole output frame as bytes (float32 4 per value, several
    outputs one after another), and every one checks on the board."""
    make, frame = BENCH_INTERFACES[kind]
    build = tmp_path_factory.mktemp("bi")    # short: QEMU's monitor socket path has a limit
    model_file = build / "m.tflite"
    model_file.write_bytes(make())
    monkeypatch.setenv("DRSN_EDGE_BUILD", str(build))
    code, out, err = run_cli(capsys, "benchmark", "--config", SMOKE, "--build-dir", str(build),
                             "--model", str(model_file))
    assert code == 0, err
    rep = json.loads((build / "reports" / "benchmark.json").read_text())
    assert rep["bit_exact"] is True and rep["instructions_per_inference"] > 0
    assert f"int8_t bench_output[{frame}];" in next(build.rglob("bench_data.c")).read_text()


def test_random_hil_vectors_are_seeded_and_cover_int8():
    inp = hil.ModelInput((49, 10, 1), 0.1, 0)
    a = hil.random_vectors(inp, 300, SEED)
    b = hil.random_vectors(inp, 300, SEED)
    c = hil.random_vectors(inp, 300, SEED + 1)
    assert a.x.shape == (300, 49, 10, 1) and a.x.dtype == np.int8 and a.kind == "random"
    assert np.array_equal(a.x, b.x) and a.digest == b.digest and not np.array_equal(a.x, c.x)
    assert a.x.min() == -128 and a.x.max() == 127 and a.y is None


def test_hil_vector_count_comes_from_the_config_for_a_user_model():
    from drsn_edge import config
    cfg = config.load(SMOKE, ["hil.random_vectors=37"])
    inp = hil.ModelInput((8,), 0.1, 0)
    assert len(hil.load_vectors(cfg, None, inp, 0, user=True)) == 37
    assert len(hil.load_vectors(cfg, None, inp, 5, user=True)) == 5       # hil.limit caps


# --- what cannot be deployed ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def rsqrt_model():
    """An int8 model with an RSQRT (FULLY_CONNECTED, ABS, ADD, RSQRT)."""
    L = _layers()
    return keras_model((8,), lambda x: L.Lambda(lambda t: tf.math.rsqrt(tf.abs(t) + 1.0))(L.Dense(8)(x)))


def test_an_op_without_a_kernel_is_one_line_naming_it_and_the_tflm_backend(rsqrt_model, tmp_path, capsys,
                                                                          monkeypatch):
    """Every int8 op the audit accepts has a unit, so the compiled runtime's own refusal is
    shown with one hidden (RSQRT): one line naming the op and the TFLM back end, exit 2,
    nothing left behind. With its unit the model deploys."""
    codegen.check(rsqrt_model, "m")
    monkeypatch.setattr(codegen, "SUPPORTED", codegen.SUPPORTED - {"RSQRT"})
    _, build, common = user_model_build(tmp_path, monkeypatch, rsqrt_model, "rsqrt")
    code, _, err = run_cli(capsys, "firmware", *common)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("drsn-edge firmware: error: ")
    assert "op 3 RSQRT" in lines[0] and 'firmware.backend="tflm"' in lines[0]
    assert not (build / "firmware").exists(), "a refused model left firmware sources behind"


def test_a_softmax_on_logits_that_barely_vary_is_one_line_not_a_tflm_abort():
    """An untrained model's softmax input can calibrate to a scale so small that TFLM's
    prepare aborts the process (its input multiplier must exceed one): refused in one line
    that says why, before anything runs it."""
    model = float_output_model("softmax")
    k = [op.opcode for op in tflm_oracle.read_operators(model)].index("SOFTMAX")

    def shrink(m):
        g = m.subgraphs[0]
        g.tensors[g.operators[k].inputs[0]].quantization.scale = np.array([1e-9], np.float32)
    with pytest.raises(UserError, match=r"op \d+ SOFTMAX .*input scale 1e-09 .*too small for TFLM's int8 "
                                        r"softmax, which stops on it too"):
        codegen.check(rebuilt(model, shrink), "m")
    codegen.check(model, "m")         # the model as converted is fine


def test_the_audit_keeps_the_window_check_for_our_model_only(tmp_path):
    from tests.test_bad_input import tiny_tflite
    path = tmp_path / "m.tflite"
    path.write_bytes(tiny_tflite(window=256))
    assert read_model(path, user=True) == path.read_bytes()         # its own shape is fine
    with pytest.raises(UserError, match="data.window = 512"):
        read_model(path, 512)
    path.write_bytes(tiny_tflite(dtype="float"))
    with pytest.raises(UserError, match=r"cannot be deployed: .*float32.*TFLiteConverter"):
        read_model(path, user=True)


def dynamic_batch_model() -> bytes:
    """Keras without batch_size=1: every shape signature says -1 for the batch, Flatten
    computes its target shape at run time (SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE), and a
    Dense on a feature map reshapes to [-1, -1] and back (SHAPE, GATHER, REDUCE_PROD...)."""
    import keras
    L = _layers()
    keras.utils.set_random_seed(1)
    x = keras.Input((16, 16, 1))                      # batch dimension left dynamic
    h = L.Dense(6, activation="relu")(L.MaxPooling2D()(L.Conv2D(4, 3, activation="relu")(x)))
    y = L.Dense(3)(L.Flatten()(h))
    return to_int8(keras.Model(x, y), (16, 16, 1))


def dynamic_tcn_model() -> bytes:
    """A temporal convolutional network (causal dilated Conv1D, a residual add) and a
    dilated depthwise 2D layer, with a dynamic batch: the converter then writes each dilated
    convolution as SPACE_TO_BATCH_ND -> convolution -> BATCH_TO_SPACE_ND."""
    import keras
    L = _layers()
    keras.utils.set_random_seed(2)
    x = keras.Input((64, 2))
    h = L.Conv1D(8, 3, dilation_rate=2, padding="causal", activation="relu")(x)
    h = L.Conv1D(8, 3, dilation_rate=8, padding="causal", activation="relu")(h)
    h = L.Add()([h, L.Conv1D(8, 1)(x)])
    h = L.Reshape((8, 8, 8))(h)
    h = L.DepthwiseConv2D(3, dilation_rate=2, padding="same")(h)
    return to_int8(keras.Model(x, L.Dense(3)(L.Flatten()(h))), (64, 2))


def test_dilated_convolutions_of_a_dynamic_batch_become_dilated_convolutions(tmp_path):
    from quantize import static_shapes
    model = dynamic_tcn_model()
    assert inspect(model, "m")["op_counts"]["SPACE_TO_BATCH_ND"] == 3
    folded, note = static_shapes.make_static(model)
    counts = inspect(folded, "m")["op_counts"]
    assert not {"SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND"} & set(counts), counts
    assert note["dilated_convolutions"] == 3 and counts["PAD"] == 3 + 2   # and the 2 causal pads
    codegen.check(folded, "m")                       # the compiled runtime takes every op
    inp = tflm_oracle.model_inputs(folded)[0]
    x = np.random.default_rng(1).integers(-128, 128, size=(20, *inp.shape[1:]), dtype=np.int16).astype(np.int8)
    np.testing.assert_array_equal(tflite_ref(folded, x), tflite_ref(model, x))
    np.testing.assert_array_equal(tflm_oracle.run(folded, x), tflite_ref(folded, x))


def test_dilated_layers_sharing_their_paddings_constant_each_keep_their_own():
    """Same rate and padding: the converter gives every SPACE_TO_BATCH_ND one shared
    paddings tensor, which the rewrite must not change in place."""
    import keras
    from quantize import static_shapes
    L = _layers()
    keras.utils.set_random_seed(4)
    x = keras.Input((48, 2))
    h = x
    for _ in range(3):
        h = L.Conv1D(6, 3, dilation_rate=2, padding="same", activation="relu")(h)
    model = to_int8(keras.Model(x, L.Dense(3)(L.Flatten()(h))), (48, 2))
    folded, note = static_shapes.make_static(model)
    assert note["dilated_convolutions"] == 3
    rng = np.random.default_rng(2)
    xs = rng.integers(-128, 128, size=(12, 48, 2), dtype=np.int16).astype(np.int8)
    np.testing.assert_array_equal(tflite_ref(folded, xs), tflite_ref(model, xs))


def test_a_dynamic_batch_is_folded_to_the_batch_of_one_tflm_runs(tmp_path):
    from quantize import static_shapes
    model = dynamic_batch_model()
    assert {"SHAPE", "PACK"} <= set(inspect(model, "m")["op_counts"])
    path = tmp_path / "dynamic.tflite"
    path.write_bytes(model)
    folded = read_model(path, user=True)
    counts = inspect(folded, "m")["op_counts"]
    assert not {"SHAPE", "STRIDED_SLICE", "PACK", "GATHER", "REDUCE_PROD"} & set(counts), counts
    assert counts["CONV_2D"] == 1 and counts["FULLY_CONNECTED"] == 2
    _, note = static_shapes.make_static(model)
    assert note["dynamic_batch"] and {"PACK", "SHAPE", "STRIDED_SLICE"} <= set(note["folded_ops"])
    assert static_shapes.make_static(folded) == (folded, None)          # nothing left to do
    assert static_shapes.make_static(model)[0] == folded                # deterministic
    # The TFLite interpreter gives the same outputs on both. (TFLM has no REDUCE_PROD kernel:
    # only the folded model runs on it.)
    inp = tflm_oracle.model_inputs(model)[0]
    x = np.random.default_rng(0).integers(-128, 128, size=(20, *inp.shape[1:]), dtype=np.int16).astype(np.int8)
    np.testing.assert_array_equal(tflite_ref(folded, x), tflite_ref(model, x))
    assert len(np.unique(tflite_ref(folded, x), axis=0)) > 1


def test_a_dynamic_batch_rnns_zero_state_is_folded_into_a_constant(tmp_path):
    """A Keras GRU with unroll=True converted with a dynamic batch starts from a FILL of
    zeros to a shape computed at run time (TFLM cannot even allocate that model): the fill
    becomes an int8 constant with the value TFLite computes, and the folded model runs
    bit-exact in the generated C against TFLM and equals the TFLite interpreter on the
    original."""
    import keras
    from quantize import static_shapes
    L = _layers()
    keras.utils.set_random_seed(6)
    x = keras.Input((7, 3))
    model = to_int8(keras.Model(x, L.Dense(4)(L.GRU(5, unroll=True)(x))), (7, 3))
    assert {"FILL", "SHAPE", "UNPACK"} <= set(inspect(model, "m")["op_counts"])
    path = tmp_path / "gru.tflite"
    path.write_bytes(model)
    folded = read_model(path, user=True)
    counts = inspect(folded, "m")["op_counts"]
    assert not {"FILL", "SHAPE", "PACK"} & set(counts) and counts["UNPACK"] == 1, counts
    assert "FILL" in static_shapes.make_static(model)[1]["folded_ops"]
    rng = np.random.default_rng(3)
    q = rng.integers(-128, 128, size=(24, 7, 3), dtype=np.int16).astype(np.int8)
    ref = tflm_oracle.run(folded, q).reshape(len(q), -1)
    np.testing.assert_array_equal(ref, tflite_ref(model, q).reshape(len(q), -1))
    lib, _ = host_library(folded, tmp_path)
    got = np.zeros_like(ref)
    for i in range(len(q)):
        xi = np.ascontiguousarray(q[i])
        assert lib.model_invoke(xi.ctypes.data_as(ctypes.c_void_p), got[i].ctypes.data_as(ctypes.c_void_p)) == 0
    np.testing.assert_array_equal(got, ref)
    assert len(np.unique(ref, axis=0)) > 1


def tflite_ref(model: bytes, x: np.ndarray) -> np.ndarray:
    """Outputs of the TFLite interpreter (reference kernels) for int8 inputs x, one by one."""
    it = tf.lite.Interpreter(model_content=model, num_threads=1,
                             experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    out = []
    for v in x:
        it.set_tensor(i, v[None])
        it.invoke()
        out.append(it.get_tensor(o)[0])
    return np.array(out)


@pytest.mark.parametrize("make", [dynamic_batch_model, dynamic_tcn_model])
def test_a_dynamic_batch_model_deploys_and_is_bit_exact_on_the_board(make, tmp_path, capsys, monkeypatch):
    model_file, build, common = user_model_build(tmp_path, monkeypatch, make(), "dynamic")
    code, out, err = run_cli(capsys, "firmware", *common)
    assert code == 0, err
    rep = json.loads((build / "reports" / "firmware.json").read_text())
    assert rep["selftest"]["passed"] and rep["model"]["input"]["shape"][0] == 1
    assert rep["model"]["static_shapes"]["dynamic_batch"] is True
    assert "Deployed as static" in (build / "reports" / "firmware.md").read_text()
    elf = build / "firmware" / "mps2-an386" / "firmware.elf"
    with boards.Emulator("mps2-an386", elf) as emu:
        code, out, err = run_cli(capsys, "hil", *common, "--port", emu.url, "--limit", "40")
    assert code == 0, err
    assert "40/40 vectors bit-exact on mps2-an386" in out


def test_a_dynamic_dimension_other_than_the_batch_stays_refused_in_one_line(tmp_path):
    import keras
    L = _layers()
    keras.utils.set_random_seed(1)
    x = keras.Input((None, 3), batch_size=1)          # any length: not a shape to plan memory for
    y = L.Dense(2)(L.GlobalAveragePooling1D()(L.Conv1D(4, 3)(x)))
    path = tmp_path / "any_length.tflite"
    path.write_bytes(to_int8(keras.Model(x, y), (32, 3)))
    with pytest.raises(UserError) as err:
        read_model(path, user=True)
    msg = str(err.value)
    assert "\n" not in msg and "cannot be deployed" in msg and "dynamic shape" in msg
    assert "no None in shape" in msg


def test_benchmark_with_model_measures_it_on_random_inputs(models, tmp_path_factory, capsys, monkeypatch):
    build = tmp_path_factory.mktemp("bm")    # short: QEMU's monitor socket path has a limit
    model_file = build / "cnn2d.tflite"
    model_file.write_bytes(models["cnn2d"])
    monkeypatch.setenv("DRSN_EDGE_BUILD", str(build))
    code, out, err = run_cli(capsys, "benchmark", "--config", SMOKE, "--build-dir", str(build),
                             "--model", str(model_file))
    assert code == 0, err
    rep = json.loads((build / "reports" / "benchmark.json").read_text())
    assert rep["model"]["path"] == str(model_file) and rep["bit_exact"] is True
    assert {layer["op"] for layer in rep["layers"]} >= {"CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D"}
    assert rep["instructions_per_inference"] > 0 and rep["macs"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("board", ["lm3s6965evb", "mps2-an386", "mps3-an547", "netduinoplus2"])
def test_the_2d_fast_paths_are_bit_exact_on_every_board(board, models, tmp_path_factory, capsys,
                                                          monkeypatch):
    """The 2D CNN takes all three 2D fast kernels (im2col CONV_2D, depthwise, one-row FC): their
    assembly and intrinsics on the DSP boards, the portable C on the Cortex-M3."""
    build = tmp_path_factory.mktemp("fb")
    model_file = build / "cnn2d.tflite"
    model_file.write_bytes(models["cnn2d"])
    monkeypatch.setenv("DRSN_EDGE_BUILD", str(build))
    code, out, err = run_cli(capsys, "benchmark", "--config", SMOKE, "--build-dir", str(build),
                             "--board", board, "--model", str(model_file))
    assert code == 0, err
    rep = json.loads((build / "reports" / "benchmark.json").read_text())
    assert rep["board"] == board and rep["bit_exact"] is True
    assert {layer["kernel"] for layer in rep["layers"]} >= {
        "dk_conv_s8_fast", "dk_depthwise_conv_s8_fast", "dk_fully_connected_s8_fast"}


def test_an_input_larger_than_the_default_frame_goes_through_bit_exact(tmp_path, capsys,
                                                                       monkeypatch):
    """72x72x1 = 5184 input bytes, more than the harness's default 4096-byte frames:
    `drsn-edge firmware` sizes the frames for the model, and HIL streams it bit-exact."""
    import keras
    L = _layers()
    keras.utils.set_random_seed(1)
    x = keras.Input((72, 72, 1), batch_size=1)
    model = to_int8(keras.Model(x, L.Dense(3)(L.Flatten()(L.Conv2D(2, 3, strides=8)(x)))),
                    (72, 72, 1), samples=4)
    model_file, build, common = user_model_build(tmp_path, monkeypatch, model, "big")
    code, out, err = run_cli(capsys, "firmware", *common)
    assert code == 0, err
    with boards.Emulator("mps2-an386", build / "firmware" / "mps2-an386" / "firmware.elf") as emu:
        from runner.link import Device
        with Device(emu.url, timeout=5) as dev:
            info = dev.info()
        # one input per frame: count, rank, four dims and 5184 bytes, rounded up to 256
        assert info.max_payload == 5376 and info.max_batch == 1
        code, out, err = run_cli(capsys, "hil", *common, "--port", emu.url, "--limit", "12")
    assert code == 0, err
    assert "12/12 vectors bit-exact on mps2-an386" in out


def test_frames_grow_with_the_input_up_to_what_info_can_announce():
    from firmware_gen import build as fw_build
    assert fw_build.frame_payload(4, 1024) == 4096               # the default holds it
    assert fw_build.frame_payload(4, 96 * 96 * 3) == 27904       # 27,667 rounded up
    assert fw_build.frame_payload(2, 4096 - 10) == 4096 + 256    # header pushes it over
    assert fw_build.frame_payload(4, 70000) > fw_build.FRAME_PAYLOAD_MAX   # left at 4096


def test_a_speed_image_too_big_for_the_board_keeps_int8_weights_until_it_fits(tmp_path, capsys,
                                                                              monkeypatch):
    """The FC autoencoder's int16 fast records (570 KB) overflow mps3-an547's 512 KB of flash:
    `firmware` then keeps int8 weights in the layers that save the most per MAC, says so,
    and the image boots and passes its self-test; OPTIMIZE=size keeps them all int8."""
    model = keras_model(*autoencoder(_layers()))
    model_file = tmp_path / "autoencoder.tflite"
    model_file.write_bytes(model)
    build = tmp_path / "build"
    monkeypatch.setenv("DRSN_EDGE_BUILD", str(build))
    common = ["--config", SMOKE, "--build-dir", str(build), "--model", str(model_file), "--board", "mps3-an547"]
    sizes = {}
    for mode in ("speed", "size"):
        code, out, err = run_cli(capsys, "firmware", *common, "--optimize", mode)
        assert code == 0, err
        rep = json.loads((build / "reports" / "firmware.json").read_text())
        assert rep["optimize"] == mode and rep["selftest"]["passed"] and rep["fits"]
        assert rep["flash_bytes"] <= rep["board_memory"]["flash_bytes"]
        sizes[mode] = (rep["flash_bytes"], rep["flash_budget"]["int8_weight_layers"],
                       rep["flash_budget"]["to_fit_board"])
        md = (build / "reports" / "firmware.md").read_text()
        assert f"Optimized for **{mode}**" in md
        assert ("did not fit mps3-an547's flash" in md) == (mode == "speed")
    (speed, speed_layers, fitted), (size, size_layers, _) = sizes["speed"], sizes["size"]
    assert fitted and speed_layers and set(speed_layers) < set(size_layers)
    assert size < speed <= 512 * 1024
