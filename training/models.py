"""1D Deep Residual Shrinkage Networks (DRSN-CW, DRSN-CS) and the plain ResNet they are compared with.

The residual shrinkage building unit (RSBU), as described in docs/model.md:

    r   = Conv(ReLU(BN(Conv(ReLU(BN(x))))))        residual branch
    A   = mean over time of |r|                     per channel (CW) or one value (CS)
    a   = sigmoid(FC(ReLU(BN(FC(A)))))              in (0, 1)
    tau = a * A                                     so 0 < tau < mean|r|
    y   = soft_threshold(r, tau) + shortcut(x)

Every op is chosen so that the TFLite converter keeps it int8 for TFLite Micro: there is no
SIGN kernel in TFLM and a plain negation became a float NEG op, so the soft threshold is
written as relu(r - tau) + min(r + tau, 0), which converts to SUB (ReLU fused), ADD and
MINIMUM. All shapes are static; tau is broadcast over time with a fixed Reshape.
"""

from __future__ import annotations

import keras
from keras import layers, ops

ARCHS = ("drsn_cw", "drsn_cs", "resnet")


@keras.saving.register_keras_serializable(package="drsn_edge")
class AbsMean(layers.Layer):
    """mean(|x|) over time (axis 1), per channel; or over time and channels when `shared`."""

    def __init__(self, shared: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.shared = shared

    def call(self, x):
        a = ops.mean(ops.abs(x), axis=1)                      # [B, C]
        if self.shared:
            a = ops.mean(a, axis=1, keepdims=True)           # [B, 1]
        return a

    def get_config(self):
        return {**super().get_config(), "shared": self.shared}


@keras.saving.register_keras_serializable(package="drsn_edge")
class SoftThreshold(layers.Layer):
    """y = sign(r) * max(|r| - tau, 0), written without SIGN or NEG (see module docstring).

    `tau` is [B, 1, C] (channel-wise) or [B, 1, 1] (channel-shared) and broadcasts over time.
    """

    def call(self, r, tau):
        return ops.relu(r - tau) + ops.minimum(r + tau, 0.0)


def _conv(filters, kernel, stride=1, name=None):
    return layers.Conv1D(filters, kernel, strides=stride, padding="same", use_bias=False,
                         kernel_initializer="he_normal", name=name)


def thresholds(r, mode: str, units: int, name: str):
    """tau for the residual r: [B, 1, C] for 'cw', [B, 1, 1] for 'cs'."""
    channels = r.shape[-1]
    a = AbsMean(shared=(mode == "cs"), name=f"{name}_absmean")(r)
    h = layers.Dense(units or channels, use_bias=False, name=f"{name}_fc1")(a)
    h = layers.BatchNormalization(name=f"{name}_fc1_bn")(h)
    h = layers.ReLU(name=f"{name}_fc1_relu")(h)
    alpha = layers.Dense(channels if mode == "cw" else 1, activation="sigmoid",
                         name=f"{name}_fc2")(h)
    tau = layers.Multiply(name=f"{name}_tau")([alpha, a])
    return layers.Reshape((1, tau.shape[-1]), name=f"{name}_tau_t")(tau)


def residual_unit(x, filters: int, stride: int, kernel: int, shrink: str | None,
                  threshold_units: int, name: str):
    """One RSBU (shrink='cw' or 'cs') or a plain pre-activation residual unit (shrink=None)."""
    h = layers.BatchNormalization(name=f"{name}_bn1")(x)
    h = layers.ReLU(name=f"{name}_relu1")(h)
    h = _conv(filters, kernel, stride, name=f"{name}_conv1")(h)
    h = layers.BatchNormalization(name=f"{name}_bn2")(h)
    h = layers.ReLU(name=f"{name}_relu2")(h)
    r = _conv(filters, kernel, name=f"{name}_conv2")(h)
    if shrink:
        r = SoftThreshold(name=f"{name}_shrink")(r, thresholds(r, shrink, threshold_units, name))
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv(filters, 1, stride, name=f"{name}_proj")(x)
    return layers.Add(name=f"{name}_add")([r, shortcut])


def check_arch(arch: str, key: str = "model.arch") -> None:
    if arch not in ARCHS:
        from drsn_edge.errors import UserError
        raise UserError(f"{key} = {arch!r} is not a known architecture; use one of {', '.join(ARCHS)}")


def build(arch: str, window: int, n_classes: int, model_cfg: dict) -> keras.Model:
    check_arch(arch)
    shrink = {"drsn_cw": "cw", "drsn_cs": "cs", "resnet": None}[arch]
    inputs = keras.Input(shape=(window, 1), batch_size=None, name="vibration")
    x = _conv(model_cfg["stem_filters"], model_cfg["stem_kernel"], model_cfg["stem_stride"],
              name="stem_conv")(inputs)
    for i, (filters, stride) in enumerate(model_cfg["blocks"]):
        x = residual_unit(x, filters, stride, model_cfg["kernel"], shrink,
                          model_cfg.get("threshold_units", 0), name=f"rsbu{i + 1}")
    x = layers.BatchNormalization(name="head_bn")(x)
    x = layers.ReLU(name="head_relu")(x)
    x = layers.GlobalAveragePooling1D(name="head_gap")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=arch)


def tau_model(model: keras.Model, unit: int = 1) -> keras.Model:
    """A model giving (r, tau) of one shrinkage unit, for tests and per-channel reports."""
    r = model.get_layer(f"rsbu{unit}_conv2").output
    tau = model.get_layer(f"rsbu{unit}_tau_t").output
    return keras.Model(model.input, [r, tau])


# --- size and cost --------------------------------------------------------------------------

def macs(model: keras.Model) -> dict:
    """Multiply-accumulates per inference: convolutions and dense layers (the MCU's real work),
    plus the element-wise ops of the shrinkage path counted separately."""
    conv = dense = elementwise = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv1D):
            out_len, out_ch = layer.output.shape[1], layer.output.shape[2]
            in_ch = layer.input.shape[-1]
            conv += out_len * out_ch * layer.kernel_size[0] * in_ch
        elif isinstance(layer, layers.Dense):
            dense += layer.input.shape[-1] * layer.units
        elif isinstance(layer, (SoftThreshold, AbsMean, layers.Add)):
            shape = layer.output.shape if not isinstance(layer, AbsMean) else layer.input.shape
            n = 1
            for d in shape[1:]:
                n *= d
            elementwise += n
    return {"total": conv + dense, "conv": conv, "dense": dense, "elementwise_ops": elementwise}


def weight_bytes_int8(model: keras.Model) -> int:
    """Bytes of weights after int8 conversion: int8 kernels, int32 biases (BN folds away,
    except a standalone BN which becomes a per-channel int8 MUL and ADD)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, (layers.Conv1D, layers.Dense)):
            total += int(layer.kernel.shape.num_elements())
            # conv+BN and dense+BN fold into an int32 bias per output channel
            total += 4 * int(layer.kernel.shape[-1])
        elif isinstance(layer, layers.BatchNormalization):
            inbound = layer.input._keras_history[0] if hasattr(layer.input, "_keras_history") else None
            if not isinstance(inbound, (layers.Conv1D, layers.Dense)):
                total += 2 * int(layer.gamma.shape[0])
    return total


def activation_peak_bytes(model: keras.Model) -> int:
    """Peak bytes of live int8 activations, walking the graph in order and freeing each tensor
    after its last consumer: an estimate of the tensor arena (the firmware stage plans it
    exactly)."""
    order = list(model.layers)
    last_use = {}
    for i, layer in enumerate(order):
        for node in layer._inbound_nodes:
            for t in node.input_tensors:
                last_use[id(t)] = i
    peak = 0
    live = {}
    for i, layer in enumerate(order):
        out = layer.output
        n = 1
        for d in out.shape[1:]:
            n *= d
        live[id(out)] = n
        peak = max(peak, sum(live.values()))
        for key in [k for k in live if last_use.get(k, -1) <= i and k != id(out)]:
            del live[key]
    return peak
