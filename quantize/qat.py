"""Quantization-aware training with Keras 3 fake-quant ops.

The trained float model is rebuilt layer by layer into a graph where every tensor the
TFLite converter will store as int8 passes through an 8-bit fake-quant op first:

- Conv1D / Dense kernels: symmetric, narrow-range fake quant ([-127, 127], zero point 0),
  per output channel for convolutions, exactly the grid TFLite uses for int8 weights, so
  the converter re-derives the same integers from the trained weights.
- A BatchNormalization that directly follows a Conv1D/Dense (its only consumer) is folded
  into that layer's kernel and bias with its moving statistics, as the converter would do;
  a ReLU that follows is fused, so the quantized tensor is the post-ReLU one (as in TFLite).
- A standalone BatchNormalization becomes a per-channel multiply and add (the converter
  emits MUL and ADD for it), each with its own quantized output.
- Every activation (including the whole shrinkage path: |r|, its mean, the threshold FCs,
  the sigmoid, alpha * A and each step of the soft threshold) gets an `ActQuant`: a fake
  quant whose range is first calibrated on the calibration windows and then tracked with an
  exponential moving average of the batch range while fine-tuning. The converter takes
  these ranges verbatim, so nothing is guessed after training.
- Outputs of LOGISTIC and SOFTMAX use TFLite's fixed int8 range (scale 1/256, zero point
  -128), so the converter has no reason to add a requantize op after them.
- Ops the converter requires to keep their input's scale (RESHAPE, MINIMUM with a
  constant) get no fake quant of their own: a second range there would force a QUANTIZE.

Layer names are kept, so the converted tensors still say which Keras layer they came from.
"""

from __future__ import annotations

import numpy as np

import keras
import tensorflow as tf
from keras import layers, ops

from drsn_edge.errors import UserError

# TFLite's fixed output quantization for LOGISTIC and SOFTMAX: scale 1/256, zero point -128.
PROBABILITY_RANGE = (0.0, 255.0 / 256.0)


def _symmetric_weight_quant(w, axis_channels: bool):
    """Fake-quantize a kernel on TFLite's int8 weight grid: zero point 0, [-127, 127],
    scale = max|w| / 127 (per output channel = the last axis, or per tensor)."""
    if axis_channels:
        reduce = list(range(len(w.shape) - 1))
        m = tf.maximum(tf.reduce_max(tf.abs(w), axis=reduce), 1e-8)
        m = tf.stop_gradient(m)
        return tf.quantization.fake_quant_with_min_max_vars_per_channel(w, -m, m, num_bits=8,
                                                                        narrow_range=True)
    m = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(w)), 1e-8))
    return tf.quantization.fake_quant_with_min_max_vars(w, -m, m, num_bits=8, narrow_range=True)


class ActQuant(layers.Layer):
    """8-bit fake quant of an activation, range [lo, hi] (always containing 0).

    Modes: `calibrating` (set from Python, used eagerly) widens the range to everything it
    sees and passes the float values through; training tracks an exponential moving average
    of each batch's range; inference only quantizes. `fixed` pins the range (LOGISTIC,
    SOFTMAX outputs, and the model input: its scale and zero point are the input contract)."""

    def __init__(self, decay: float = 0.99, fixed: tuple[float, float] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.decay = decay
        self.fixed = fixed
        self.calibrating = False
        self.bypass = False     # error_budget: let float values through (eager calls only)

    def build(self, shape):
        lo, hi = self.fixed or (0.0, 0.0)
        self.lo = self.add_weight(shape=(), initializer=keras.initializers.Constant(lo),
                                  trainable=False, name="min")
        self.hi = self.add_weight(shape=(), initializer=keras.initializers.Constant(hi),
                                  trainable=False, name="max")

    def call(self, x, training=None):
        if self.calibrating and not self.fixed:
            self.lo.assign(tf.minimum(self.lo, tf.reduce_min(x)))
            self.hi.assign(tf.maximum(self.hi, tf.reduce_max(x)))
            return x
        if self.bypass:
            return x
        if training and not self.fixed:
            d = self.decay
            self.lo.assign(d * self.lo + (1 - d) * tf.minimum(tf.reduce_min(x), 0.0))
            self.hi.assign(d * self.hi + (1 - d) * tf.maximum(tf.reduce_max(x), 0.0))
        # An all-zero range (a dead channel set) would make the op divide by zero.
        hi = tf.maximum(self.hi, self.lo + 1e-6)
        return tf.quantization.fake_quant_with_min_max_vars(x, self.lo, hi, num_bits=8,
                                                            narrow_range=False)

    def get_config(self):
        return {**super().get_config(), "decay": self.decay, "fixed": self.fixed}


class QConv1D(layers.Layer):
    """Conv1D ('same' padding) + bias (+ fused ReLU) with per-channel int8 weight fake quant.

    Written as a 2D convolution over [B, 1, L, C] with a [1, k, in, out] kernel: the
    converter cannot carry per-channel fake-quant parameters through the ExpandDims that
    tf.nn.conv1d applies to a 3D kernel (it fails on the shifted channel axis), while the
    4D kernel feeds CONV_2D directly. The graph is the one Conv1D converts to anyway."""

    def __init__(self, kernel, bias, stride: int, relu: bool, **kwargs):
        super().__init__(**kwargs)
        kernel = np.asarray(kernel, np.float32)
        self._init = (kernel[None], np.asarray(bias, np.float32))
        self.stride, self.relu = stride, relu
        self.float_weights = False  # error_budget: skip the weight fake quant (eager calls only)

    def build(self, shape):
        k, b = self._init
        self.kernel = self.add_weight(shape=k.shape, initializer=keras.initializers.Constant(k),
                                      name="kernel")
        self.bias = self.add_weight(shape=b.shape, initializer=keras.initializers.Constant(b),
                                    name="bias")

    def call(self, x):
        w = self.kernel if self.float_weights else _symmetric_weight_quant(self.kernel, axis_channels=True)
        y = ops.conv(ops.expand_dims(x, 1), w, strides=(1, self.stride), padding="same")
        y = ops.squeeze(y, 1) + self.bias
        return ops.relu(y) if self.relu else y


class QDense(layers.Layer):
    """Dense + bias (+ fused ReLU) with int8 weight fake quant (per output channel)."""

    def __init__(self, kernel, bias, relu: bool, per_channel: bool = False, **kwargs):
        super().__init__(**kwargs)
        self._init = (np.asarray(kernel, np.float32), np.asarray(bias, np.float32))
        self.relu, self.per_channel = relu, per_channel
        self.float_weights = False  # error_budget: skip the weight fake quant (eager calls only)

    def build(self, shape):
        k, b = self._init
        self.kernel = self.add_weight(shape=k.shape, initializer=keras.initializers.Constant(k),
                                      name="kernel")
        self.bias = self.add_weight(shape=b.shape, initializer=keras.initializers.Constant(b),
                                    name="bias")

    def call(self, x):
        w = self.kernel if self.float_weights else _symmetric_weight_quant(self.kernel, self.per_channel)
        y = ops.matmul(x, w) + self.bias
        return ops.relu(y) if self.relu else y


class ChannelScale(layers.Layer):
    """x * s per channel: the MUL half of a standalone BatchNormalization."""

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self._init = np.asarray(scale, np.float32)

    def build(self, shape):
        self.scale = self.add_weight(shape=self._init.shape,
                                     initializer=keras.initializers.Constant(self._init), name="scale")

    def call(self, x):
        return x * _symmetric_weight_quant(self.scale, axis_channels=False)


class ChannelOffset(layers.Layer):
    """x + b per channel (+ fused ReLU): the ADD half of a standalone BatchNormalization."""

    def __init__(self, offset, relu: bool, **kwargs):
        super().__init__(**kwargs)
        self._init = np.asarray(offset, np.float32)
        self.relu = relu

    def build(self, shape):
        self.offset = self.add_weight(shape=self._init.shape,
                                      initializer=keras.initializers.Constant(self._init), name="offset")

    def call(self, x):
        b = self.offset
        lo, hi = tf.minimum(tf.reduce_min(b), 0.0), tf.maximum(tf.reduce_max(b), 1e-8)
        b = tf.quantization.fake_quant_with_min_max_vars(b, tf.stop_gradient(lo), tf.stop_gradient(hi),
                                                         num_bits=8)
        y = x + b
        return ops.relu(y) if self.relu else y


class Elementwise(layers.Layer):
    """a (op) b with broadcasting, optionally followed by a ReLU the converter fuses."""

    OPS = {"add": ops.add, "sub": ops.subtract, "mul": ops.multiply}

    def __init__(self, op: str, relu: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.op, self.relu = op, relu

    def call(self, a, b):
        y = self.OPS[self.op](a, b)
        return ops.relu(y) if self.relu else y


class Unary(layers.Layer):
    """abs, min(x, 0), mean over time (axis 1), mean over channels (keepdims), relu,
    sigmoid or softmax: each one TFLite op."""

    def __init__(self, op: str, **kwargs):
        super().__init__(**kwargs)
        self.op = op

    def call(self, x):
        if self.op == "abs":
            return ops.abs(x)
        if self.op == "min0":
            return ops.minimum(x, 0.0)
        if self.op == "mean_time":
            return ops.mean(x, axis=1)
        if self.op == "mean_channels":
            return ops.mean(x, axis=1, keepdims=True)
        if self.op == "relu":
            return ops.relu(x)
        if self.op == "sigmoid":
            return ops.sigmoid(x)
        if self.op == "softmax":
            return ops.softmax(x, axis=-1)
        raise ValueError(self.op)


# --- rebuilding the float graph ------------------------------------------------------------

def _producers(layer) -> list[str]:
    node = layer._inbound_nodes[0]
    return [t._keras_history.operation.name for t in node.input_tensors]


def _is_plain_relu(layer) -> bool:
    if isinstance(layer, layers.ReLU):
        return (layer.max_value is None and float(layer.negative_slope) == 0.0
                and float(layer.threshold) == 0.0)
    if isinstance(layer, layers.Activation):
        return getattr(layer.activation, "__name__", "") == "relu"
    return False


def _activation_name(layer) -> str:
    fn = getattr(layer, "activation", None)
    return getattr(fn, "__name__", "linear") if fn is not None else "linear"


def _bn_affine(bn) -> tuple[np.ndarray, np.ndarray]:
    """(s, b) with BN(x) = s * x + b at inference."""
    axis = bn.axis if isinstance(bn.axis, int) else bn.axis[0]
    if axis not in (-1, len(bn.input.shape) - 1):
        raise UserError(f"layer {bn.name!r} normalises axis {bn.axis}; only the channel (last) axis "
                        f"can be folded for int8; retrain with BatchNormalization(axis=-1)")
    var = keras.ops.convert_to_numpy(bn.moving_variance).astype(np.float64)
    mean = keras.ops.convert_to_numpy(bn.moving_mean).astype(np.float64)
    gamma = keras.ops.convert_to_numpy(bn.gamma).astype(np.float64) if bn.scale else np.ones_like(var)
    beta = keras.ops.convert_to_numpy(bn.beta).astype(np.float64) if bn.center else np.zeros_like(var)
    s = gamma / np.sqrt(var + bn.epsilon)
    return s.astype(np.float32), (beta - mean * s).astype(np.float32)


def build_qat_model(model: keras.Model, decay: float = 0.99,
                    input_range: tuple[float, float] | None = None) -> keras.Model:
    """The fake-quant twin of a trained float model (same layer names, BN folded where it
    follows a Conv1D/Dense). `input_range` pins the input window's quantizer (the input
    contract, drsn_edge.preprocess.contract_range) instead of calibrating it. Raises
    UserError naming a layer that cannot become int8."""
    from training.models import AbsMean, SoftThreshold

    consumers: dict[str, list] = {layer.name: [] for layer in model.layers}
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        for name in _producers(layer):
            consumers[name].append(layer)

    def sole(layer):
        c = consumers[layer.name]
        return c[0] if len(c) == 1 else None

    def q(x, name, fixed=None):
        return ActQuant(decay=decay, fixed=fixed, name=name)(x)

    out: dict[str, object] = {}
    done: set[str] = set()
    inputs = []
    for layer in model.layers:
        if layer.name in done:
            continue
        kind = type(layer).__name__
        if isinstance(layer, layers.InputLayer):
            if len(model.inputs) != 1:
                raise UserError(f"model {model.name!r} has {len(model.inputs)} inputs; the int8 "
                                f"pipeline handles one input window")
            x = keras.Input(shape=layer.output.shape[1:], name=layer.name)
            inputs.append(x)
            out[layer.name] = q(x, f"{layer.name}_q", fixed=input_range)
            continue
        ins = [out[n] for n in _producers(layer)]
        chain = [layer]

        if isinstance(layer, (layers.Conv1D, layers.Dense)):
            act = _activation_name(layer)
            if act not in ("linear", "relu", "sigmoid", "softmax"):
                raise UserError(f"layer {layer.name!r} ({kind}) uses activation {act!r}, which has no "
                                f"int8 TFLite Micro kernel here; use relu, sigmoid or softmax")
            if isinstance(layer, layers.Conv1D) and (layer.padding != "same" or layer.dilation_rate[0] != 1
                                                    or layer.groups != 1):
                raise UserError(f"layer {layer.name!r} (Conv1D) has padding={layer.padding!r}, "
                                f"dilation {layer.dilation_rate}, groups {layer.groups}; the int8 rebuild "
                                f"supports padding='same', no dilation, one group")
            k = keras.ops.convert_to_numpy(layer.kernel).astype(np.float32)
            b = (keras.ops.convert_to_numpy(layer.bias).astype(np.float32) if layer.use_bias
                 else np.zeros(k.shape[-1], np.float32))
            nxt = sole(layer)
            if act == "linear" and isinstance(nxt, layers.BatchNormalization):
                s, off = _bn_affine(nxt)
                k, b = k * s, b * s + off
                chain.append(nxt)
                nxt = sole(nxt)
            relu = act == "relu"
            if act == "linear" and nxt is not None and _is_plain_relu(nxt):
                relu = True
                chain.append(nxt)
            if isinstance(layer, layers.Conv1D):
                y = QConv1D(k, b, layer.strides[0], relu, name=layer.name)(ins[0])
            else:
                y = QDense(k, b, relu, name=layer.name)(ins[0])
            if act in ("sigmoid", "softmax"):
                y = q(y, f"{layer.name}_logits_q")
                y = Unary(act, name=f"{layer.name}_{act}")(y)
                y = q(y, f"{layer.name}_q", fixed=PROBABILITY_RANGE)
            else:
                y = q(y, f"{chain[-1].name}_q")
        elif isinstance(layer, layers.BatchNormalization):
            s, off = _bn_affine(layer)
            nxt = sole(layer)
            relu = nxt is not None and _is_plain_relu(nxt)
            if relu:
                chain.append(nxt)
            y = ChannelScale(s, name=f"{layer.name}_scale")(ins[0])
            y = q(y, f"{layer.name}_scale_q")
            y = ChannelOffset(off, relu, name=layer.name)(y)
            y = q(y, f"{chain[-1].name}_q")
        elif _is_plain_relu(layer):
            y = q(Unary("relu", name=layer.name)(ins[0]), f"{layer.name}_q")
        elif isinstance(layer, (layers.Add, layers.Multiply)):
            if len(ins) != 2:
                raise UserError(f"layer {layer.name!r} ({kind}) has {len(ins)} inputs; the int8 "
                                f"rebuild handles two")
            op = "add" if isinstance(layer, layers.Add) else "mul"
            nxt = sole(layer)
            relu = op == "add" and nxt is not None and _is_plain_relu(nxt)
            if relu:
                chain.append(nxt)
            y = q(Elementwise(op, relu, name=layer.name)(*ins), f"{chain[-1].name}_q")
        elif isinstance(layer, layers.Reshape):
            # Same scale in and out: no range of its own.
            y = layers.Reshape(layer.target_shape, name=layer.name)(ins[0])
        elif isinstance(layer, layers.GlobalAveragePooling1D):
            if layer.keepdims or layer.data_format != "channels_last":
                raise UserError(f"layer {layer.name!r} ({kind}) must be channels_last without keepdims")
            y = q(Unary("mean_time", name=layer.name)(ins[0]), f"{layer.name}_q")
        elif isinstance(layer, layers.Dropout):
            y = ins[0]
        elif isinstance(layer, AbsMean):
            y = q(Unary("abs", name=f"{layer.name}_abs")(ins[0]), f"{layer.name}_abs_q")
            y = q(Unary("mean_time", name=f"{layer.name}_mean" if layer.shared else layer.name)(y),
                  f"{layer.name}_mean_q" if layer.shared else f"{layer.name}_q")
            if layer.shared:
                y = q(Unary("mean_channels", name=layer.name)(y), f"{layer.name}_q")
        elif isinstance(layer, SoftThreshold):
            r, tau = ins
            pos = q(Elementwise("sub", relu=True, name=f"{layer.name}_pos")(r, tau), f"{layer.name}_pos_q")
            neg = q(Elementwise("add", name=f"{layer.name}_sum")(r, tau), f"{layer.name}_sum_q")
            # MINIMUM keeps its input's scale (0 is exact on any int8 grid containing it).
            neg = Unary("min0", name=f"{layer.name}_neg")(neg)
            y = q(Elementwise("add", name=layer.name)(pos, neg), f"{layer.name}_q")
        else:
            raise UserError(f"layer {layer.name!r} ({kind}) cannot be quantized: the int8 rebuild "
                            f"knows Conv1D, Dense, BatchNormalization, ReLU, Add, Multiply, Reshape, "
                            f"GlobalAveragePooling1D, AbsMean, SoftThreshold; rebuild the model "
                            f"from training/models.py")
        for c in chain:
            out[c.name] = y
            done.add(c.name)

    final = model.outputs[0]._keras_history.operation.name
    return keras.Model(inputs, out[final], name=f"{model.name}_qat")


def act_quants(model: keras.Model) -> list[ActQuant]:
    return [layer for layer in model.layers if isinstance(layer, ActQuant)]


def error_budget(qmodel: keras.Model, x: np.ndarray, reference: np.ndarray,
                 batch_size: int = 250) -> dict:
    """Where the top-1 agreement with the float model goes: the fine-tuned QAT model run with
    no fake quant at all, then with one source of int8 error at a time (the input window,
    the weights, the activations after the input), then all of them. `reference` is the
    float model's output on `x`."""
    every = act_quants(qmodel)
    first = every[0]  # the input window's quantizer: the first op of the rebuilt graph
    aqs = [first] + [a for a in every[1:] if not a.fixed]
    wq = [layer for layer in qmodel.layers if isinstance(layer, (QConv1D, QDense))]
    want = np.argmax(reference, axis=1)

    def agree(inputs: bool, weights: bool, acts: bool) -> float:
        first.bypass = not inputs
        for a in aqs[1:]:
            a.bypass = not acts
        for layer in wq:
            layer.float_weights = not weights
        out = np.concatenate([keras.ops.convert_to_numpy(qmodel(x[i:i + batch_size], training=False))
                              for i in range(0, len(x), batch_size)])
        return round(float(np.mean(np.argmax(out, axis=1) == want)), 4)
    try:
        return {"none": agree(False, False, False),
                "input_only": agree(True, False, False),
                "weights_only": agree(False, True, False),
                "activations_only": agree(False, False, True),
                "all": agree(True, True, True)}
    finally:
        for a in aqs:
            a.bypass = False
        for layer in wq:
            layer.float_weights = False


def calibrate(qmodel: keras.Model, x: np.ndarray, batch_size: int = 64) -> None:
    """Start every activation range at the float min/max over the calibration windows."""
    aqs = act_quants(qmodel)
    for a in aqs:
        a.calibrating = True
    try:
        for i in range(0, len(x), batch_size):
            qmodel([x[i:i + batch_size]], training=False)
    finally:
        for a in aqs:
            a.calibrating = False


def ranges(qmodel: keras.Model) -> dict[str, tuple[float, float]]:
    return {a.name: (float(a.lo.numpy()), float(a.hi.numpy())) for a in act_quants(qmodel)}


def fine_tune(qmodel: keras.Model, data: dict, cfg: dict, name: str, teacher: keras.Model | None = None) -> dict:
    """A few epochs at a low, constant learning rate on fresh noisy training windows (the
    same recipe as training, new noise draws). With a `teacher` (quantize.qat_loss =
    "distill") the targets are the float model's own probabilities, so QAT learns to
    reproduce the float model under quantization rather than to retrain it; epochs are then
    ranked by validation agreement with the teacher, else by validation accuracy. Epoch 0
    is the calibrated model before any step, so fine-tuning can only help on validation."""
    from tqdm import tqdm
    from training import dataset

    qc, t = cfg["quantize"], cfg["train"]
    x_val, y_val = data["val"]
    # Another seed than training's: noise draws the float model never saw.
    feed = dataset.training_feed(data, cfg, int(cfg["seed"]) + 1)
    distill = teacher is not None
    qmodel.compile(optimizer=keras.optimizers.Adam(learning_rate=qc["qat_learning_rate"], name="adam"),
                   loss="categorical_crossentropy" if distill else "sparse_categorical_crossentropy")
    ref_val = np.argmax(teacher.predict(x_val, batch_size=256, verbose=0), axis=1) if distill else y_val

    def score():
        pred = np.argmax(qmodel.predict(x_val, batch_size=256, verbose=0), axis=1)
        return float(np.mean(pred == ref_val)), float(np.mean(pred == y_val))

    best, val_acc = score()
    label = "val_agree" if distill else "val_acc"
    history = {"val_accuracy": [val_acc], "val_score": [best], "loss": [None],
               "selected_by": "validation agreement with float" if distill else "validation accuracy"}
    best_epoch, best_weights = 0, qmodel.get_weights()
    bar = tqdm(total=qc["qat_epochs"], desc=f"QAT   {name:8s}", unit="epoch", dynamic_ncols=True,
               mininterval=0)
    bar.set_postfix({label: f"{best:.3f}"})
    for epoch in range(qc["qat_epochs"]):
        x, yy = feed.epoch(epoch)
        target = teacher.predict(x, batch_size=256, verbose=0) if distill else yy
        h = qmodel.fit(x, target, batch_size=t["batch_size"], epochs=1, shuffle=False, verbose=0)
        s, val_acc = score()
        history["loss"].append(float(h.history["loss"][0]))
        history["val_accuracy"].append(val_acc)
        history["val_score"].append(s)
        bar.set_postfix({"loss": f"{h.history['loss'][0]:.3f}", label: f"{s:.3f}"})
        bar.update(1)
        # Agreement with the float model uses no labels, so it may rank epochs on any
        # windows; label accuracy may not when validation is cut from training recordings.
        if s > best or (not distill and not data.get("val_selects", True)):
            best, best_epoch, best_weights = s, epoch + 1, qmodel.get_weights()
    bar.close()
    qmodel.set_weights(best_weights)
    history["best_epoch"] = best_epoch
    return history
