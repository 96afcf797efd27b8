"""A user's model converted with a dynamic batch, made static for the batch of 1 it runs with.

Most Keras models are converted without `batch_size=1`: the .tflite then says -1 for the batch
in each tensor's shape signature, and a Flatten (or any Reshape with a -1) computes its target
shape at run time, SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE. TFLite Micro runs such a model
as it is: it allocates every tensor with its `shape` (batch 1), so the computed shape comes out
the same on every call. The firmware plans its memory at generation time and needs those
values then, so this module computes them once, with the TFLite interpreter on the model
itself, stores them as constants and drops the ops that computed them; the -1 batches become
the 1 they always were. Nothing else changes: the ops that compute data, their tensors and
quantization stay as they are, so TFLM gives the same outputs on both models
(tests/test_byom.py checks it).

    data, note = make_static(model_bytes)   # note: None when there was nothing to do
"""

from __future__ import annotations

import numpy as np


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    return schema


def _signature(t) -> list[int]:
    return [] if t.shapeSignature is None else [int(d) for d in t.shapeSignature]


def make_static(model_bytes: bytes) -> tuple[bytes, dict | None]:
    """(bytes, note): the model with its run-time shape computations folded into constants
    and its batch-of-1 shape signatures made static, and what was done; the bytes unchanged
    and None when there is nothing to fold, or when a dynamic dimension is anything but a
    batch of 1 (the audit then names it)."""
    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))
    if len(model.subgraphs or []) != 1:
        return model_bytes, None
    g = model.subgraphs[0]
    tensors = g.tensors or []
    dynamic = [i for i, t in enumerate(tensors) if -1 in _signature(t)]
    # Only a -1 batch over a stored batch of 1 is what TFLM runs as static; the model's
    # other -1 dimensions follow from the input's shape (a Dense on a sequence reshapes to
    # [-1, -1] and back), and the interpreter tells them.
    if any(-1 in _signature(tensors[i])[1:] or tensors[i].shape is None or len(tensors[i].shape) == 0
           or int(tensors[i].shape[0]) != 1 for i in g.inputs if i in dynamic):
        return model_bytes, None

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    int32 = schema.TensorType.INT32

    def has_data(i):
        b = model.buffers[tensors[i].buffer] if tensors[i].buffer < len(model.buffers) else None
        return b is not None and b.data is not None and len(b.data) > 0

    # An op computes only shapes when its outputs are int32 and it reads nothing but a
    # tensor's shape (SHAPE), constants, or other such ops' outputs.
    shape_only: set[int] = set()
    folded: list[int] = []
    for k, op in enumerate(g.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        name = names.get(max(int(code.builtinCode), int(code.deprecatedBuiltinCode)), "")
        ins = [int(i) for i in (op.inputs if op.inputs is not None else []) if i >= 0]
        outs = [int(i) for i in (op.outputs if op.outputs is not None else [])]
        if outs and all(tensors[o].type == int32 for o in outs) and (
                name == "SHAPE" or (ins and all(has_data(i) or i in shape_only for i in ins))):
            shape_only.update(outs)
            folded.append(k)
    if not folded and not dynamic:
        return model_bytes, None

    try:
        values, shapes = _evaluate(model_bytes, sorted(shape_only), dynamic)
    except Exception:   # the interpreter cannot run it: the audit names what is wrong
        return model_bytes, None
    for i in dynamic:
        tensors[i].shape = np.array(shapes[i], dtype=np.int32)
    for i, value in values.items():
        buf = schema.BufferT()
        buf.data = np.ascontiguousarray(value, dtype="<i4").view(np.uint8).reshape(-1)
        model.buffers.append(buf)
        t = tensors[i]
        t.buffer = len(model.buffers) - 1
        t.shape = np.array(value.shape, dtype=np.int32)
        t.shapeSignature = None
    folded_names = []
    for k in folded:
        code = model.operatorCodes[g.operators[k].opcodeIndex]
        folded_names.append(names.get(max(int(code.builtinCode), int(code.deprecatedBuiltinCode)), "?"))
    g.operators = [op for k, op in enumerate(g.operators) if k not in set(folded)]
    for i in dynamic:
        tensors[i].shapeSignature = None

    import flatbuffers
    builder = flatbuffers.Builder(len(model_bytes) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    note = {"dynamic_batch": bool(dynamic), "folded_ops": folded_names,
            "what": ("converted with a dynamic batch: run with the batch of 1 its tensors store"
                     if dynamic else "shapes computed at run time")
                    + (f"; {len(folded)} shape op(s) ({', '.join(sorted(set(folded_names)))}) folded "
                       f"into constants" if folded else "")}
    return bytes(builder.Output()), note


def _evaluate(model_bytes: bytes, indices: list[int], dynamic: list[int]):
    """The values the shape-only tensors take when the model runs (any input: they do not
    depend on it), and the shapes of the `dynamic` tensors, from the TFLite interpreter with
    every intermediate kept."""
    import warnings
    import tensorflow as tf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = tf.lite.Interpreter(
            model_content=model_bytes, num_threads=1, experimental_preserve_all_tensors=True,
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    it.invoke()
    return ({i: np.array(it.get_tensor(i), dtype=np.int32) for i in indices},
            {i: list(np.shape(it.get_tensor(i))) for i in dynamic})
