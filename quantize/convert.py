"""Keras model → fully int8 .tflite for TFLite Micro.

The recipe (docs/conversion.md says why each step is so): export a
SavedModel with a fixed batch of 1 (so every shape is static), convert it with
`TFLiteConverter.from_saved_model`, default optimizations, a representative dataset,
int8 builtins only and int8 input and output. For a fake-quant (QAT) model the converter
takes each range from the fake-quant ops; the representative dataset only fills what
they do not cover. For a float model (PTQ) it decides every range but the input's, which
`pin_input` fixes to the input contract.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from drsn_edge.errors import UserError


def check_representative(x: np.ndarray, window: int, where: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[1:] != (window, 1) or len(x) == 0:
        raise UserError(f"{where}: representative windows have shape {list(x.shape)}, expected "
                        f"[n, {window}, 1] for this model; rerun `make train` with the same config")
    if not np.all(np.isfinite(x)):
        raise UserError(f"{where}: representative windows contain NaN or inf; rerun `make train`")
    return x.astype(np.float32)


def pin_input(model, input_range: tuple[float, float]):
    """The float model with a fixed 8-bit fake quant on its input (the input contract), so
    that PTQ, which otherwise takes the input range from the representative windows,
    converts to the contract's input scale and zero point. The model's own layers are
    reused (same names, same outputs for on-grid inputs)."""
    import keras
    from quantize.qat import ActQuant
    name = model.layers[0].name
    inp = keras.Input(shape=model.inputs[0].shape[1:], name=name)
    pinned = ActQuant(fixed=tuple(input_range), name=f"{name}_q")(inp)
    return keras.Model(inp, model.call(pinned), name=model.name)


def to_int8_tflite(model, representative: np.ndarray, max_samples: int = 256) -> bytes:
    """Full-integer .tflite bytes (int8 in, int8 out, int8 builtins only)."""
    import tensorflow as tf

    window = int(model.inputs[0].shape[1])
    rep = check_representative(representative, window, "representative dataset")[:max_samples]

    def samples():
        for x in rep:
            yield [x[None]]

    with tempfile.TemporaryDirectory(prefix="drsn_export_") as tmp:
        saved = Path(tmp) / "saved_model"
        model.export(str(saved), format="tf_saved_model", verbose=False,
                     input_signature=[tf.TensorSpec([1, window, 1], tf.float32)])
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        try:
            return bytes(converter.convert())
        except Exception as exc:  # the converter reports through many exception types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"model {model.name!r} could not be converted to int8 TFLite: {first}; "
                            f"check that it only uses layers from training/models.py") from None
