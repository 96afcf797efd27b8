"""A user's model converted with a dynamic batch, made static for the batch of 1 it runs with.

Most Keras models are converted without `batch_size=1`: the .tflite then says -1 for the batch
in each tensor's shape signature, and a Flatten (or any Reshape with a -1) computes its target
shape at run time, SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE. TFLite Micro runs such a model
as it is: it allocates every tensor with its `shape` (batch 1), so the computed shape comes out
the same on every call. The firmware plans its memory at generation time and needs those
values then, so this module computes them once, with the TFLite interpreter on the model
itself, stores them as constants and drops the ops that computed them (a FILL of a constant
to such a shape, a Keras RNN's zero initial state, becomes the int8 constant it fills); the -1
batches become the 1 they always were. Nothing else changes: the ops that compute data, their tensors and
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


def _op_name(model, op, names: dict) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    # Newer files keep the code in builtinCode, older ones in deprecatedBuiltinCode.
    return names.get(max(int(code.builtinCode), int(code.deprecatedBuiltinCode)), "")


def _int32_buffer(model, schema, values, dtype: str = "<i4") -> int:
    """A new buffer holding `values` as int32 (little-endian; or `dtype`); its index."""
    buf = schema.BufferT()
    buf.data = np.ascontiguousarray(values, dtype=dtype).view(np.uint8).reshape(-1)
    model.buffers.append(buf)
    return len(model.buffers) - 1


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
    filled: dict[int, int] = {}       # FILL output -> its op
    folded: dict[int, str] = {}       # op index -> its name
    for k, op in enumerate(g.operators or []):
        name = _op_name(model, op, names)
        ins = [int(i) for i in (op.inputs if op.inputs is not None else []) if i >= 0]
        outs = [int(i) for i in (op.outputs if op.outputs is not None else [])]
        if outs and all(tensors[o].type == int32 for o in outs) and (
                name == "SHAPE" or (ins and all(has_data(i) or i in shape_only for i in ins))):
            shape_only.update(outs)
            folded[k] = name
        # A FILL of a constant value to a computed shape (the zero initial state of a Keras
        # RNN converted with a dynamic batch) is a constant of its own type once the shape is.
        elif name == "FILL" and len(ins) == 2 and len(outs) == 1 and ins[0] in shape_only \
                and has_data(ins[1]) and tensors[outs[0]].type == schema.TensorType.INT8:
            filled[outs[0]] = k
            folded[k] = name
    if not folded and not dynamic:
        return model_bytes, None

    try:
        values, shapes = _evaluate(model_bytes, sorted(shape_only), dynamic)
        fills = _evaluate(model_bytes, sorted(filled), [], np.int8)[0] if filled else {}
    except Exception:   # the interpreter cannot run it: the audit names what is wrong
        return model_bytes, None
    for i, value in fills.items():
        tensors[i].buffer = _int32_buffer(model, schema, value, np.int8)
        tensors[i].shape = np.array(value.shape, dtype=np.int32)
        tensors[i].shapeSignature = None
    for i in dynamic:
        tensors[i].shape = np.array(shapes[i], dtype=np.int32)
    for i, value in values.items():
        tensors[i].buffer = _int32_buffer(model, schema, value)
        tensors[i].shape = np.array(value.shape, dtype=np.int32)
        tensors[i].shapeSignature = None
    folded_names = list(folded.values())
    g.operators = [op for k, op in enumerate(g.operators) if k not in folded]
    for i in dynamic:
        tensors[i].shapeSignature = None
    dilated = _dilations(model, names, schema)

    import flatbuffers
    builder = flatbuffers.Builder(len(model_bytes) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    note = {"dynamic_batch": bool(dynamic), "folded_ops": folded_names,
            "what": ("converted with a dynamic batch: run with the batch of 1 its tensors store"
                     if dynamic else "shapes computed at run time")
                    + (f"; {len(folded)} shape op(s) ({', '.join(sorted(set(folded_names)))}) folded "
                       f"into constants" if folded else "")
                    + (f"; {dilated} SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND pair(s) around a "
                       f"convolution made one dilated convolution" if dilated else "")}
    note["dilated_convolutions"] = dilated
    return bytes(builder.Output()), note


def _dilations(model, names: dict, schema) -> int:
    """SPACE_TO_BATCH_ND -> [EXPAND_DIMS | RESHAPE] -> CONV_2D | DEPTHWISE_CONV_2D ->
    [RESHAPE] -> BATCH_TO_SPACE_ND, which the converter makes of a dilated convolution when
    the batch is dynamic, becomes PAD -> [...] -> the convolution with that dilation.

    Why it is the same: SPACE_TO_BATCH_ND pads each spatial dimension with the zero point
    (pb before, pa after) and deals the positions out to d batches; the stride-1 VALID
    convolution of each batch reads every d-th position; BATCH_TO_SPACE_ND interleaves the
    results and crops cb before. Output j of the whole is then the dilated convolution of
    the input padded with pb - cb before, and only the padding the kept outputs read is
    needed after. The products and sums are the same integers, so the int8 outputs are too.
    Returns how many were rewritten; a chain that does not fit is left as it is."""
    g = model.subgraphs[0]
    tensors, ops = g.tensors, g.operators

    def op_name(op):
        return _op_name(model, op, names)

    def const(i):
        b = model.buffers[tensors[i].buffer]
        if b.data is None or len(b.data) == 0:
            return None
        return np.frombuffer(bytes(bytearray(b.data)), "<i4").reshape([int(d) for d in tensors[i].shape])

    def new_const(values) -> int:
        """A new int32 constant tensor: the converter shares one tensor among every op with
        the same constant (same paddings, same shape), so none is changed in place."""
        t = schema.TensorT()
        t.type = schema.TensorType.INT32
        t.name = f"static_shapes/const_{len(tensors)}".encode()
        t.shape = np.array(np.shape(values), dtype=np.int32)
        t.buffer = _int32_buffer(model, schema, values)
        tensors.append(t)
        return len(tensors) - 1

    def set_input(op, position, values):
        inputs = [int(i) for i in op.inputs]
        inputs[position] = new_const(values)
        op.inputs = np.array(inputs, np.int32)

    def consumers(t):
        return [k for k, op in enumerate(ops) if t in [int(i) for i in (op.inputs if op.inputs is not None else [])]]

    def shape(i):
        return [int(d) for d in tensors[i].shape]

    def pad_code():
        for j, code in enumerate(model.operatorCodes):
            if max(int(code.builtinCode), int(code.deprecatedBuiltinCode)) == schema.BuiltinOperator.PAD:
                return j
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.PAD
        code.version = 2      # the int8 PAD
        model.operatorCodes.append(code)
        return len(model.operatorCodes) - 1

    done, drop = 0, set()
    outputs = {int(i) for i in g.outputs}
    for k, s2b in enumerate(ops):
        if op_name(s2b) != "SPACE_TO_BATCH_ND":
            continue
        x, block_t, pads_t = [int(i) for i in s2b.inputs]
        block, pads = const(block_t), const(pads_t)
        if block is None or pads is None:
            continue
        chain, t = [k], int(s2b.outputs[0])
        conv = None
        while True:                                   # follow the single-consumer chain
            users = consumers(t)
            if len(users) != 1 or t in outputs:
                break
            j = users[0]
            kind = op_name(ops[j])
            chain.append(j)
            t = int(ops[j].outputs[0])
            if kind in ("CONV_2D", "DEPTHWISE_CONV_2D") and conv is None:
                conv = j
            elif kind == "BATCH_TO_SPACE_ND" or kind not in ("EXPAND_DIMS", "RESHAPE"):
                break
        b2s = chain[-1]
        if conv is None or op_name(ops[b2s]) != "BATCH_TO_SPACE_ND" or len(chain) > 5:
            continue
        crops, block2 = const(int(ops[b2s].inputs[2])), const(int(ops[b2s].inputs[1]))
        opts = ops[conv].builtinOptions
        if (crops is None or block2 is None or list(block2) != list(block) or opts.padding != schema.Padding.VALID
                or opts.strideH != 1 or opts.strideW != 1 or opts.dilationHFactor != 1 or opts.dilationWFactor != 1):
            continue
        m = len(block)
        xs, out = shape(x), shape(int(ops[b2s].outputs[0]))
        filt = shape(int(ops[conv].inputs[1]))        # [o, kh, kw, i] or [1, kh, kw, c]
        taps = [filt[2]] if m == 1 else [filt[1], filt[2]]
        if len(xs) != m + 2 or len(out) != m + 2 or xs[0] != 1:
            continue
        before = [int(pads[i][0]) - int(crops[i][0]) for i in range(m)]
        after = [out[1 + i] + (taps[i] - 1) * int(block[i]) - xs[1 + i] - before[i] for i in range(m)]
        if min(before + after) < 0:
            continue
        # PAD in place of SPACE_TO_BATCH_ND, on the same output tensor
        padded = [1] + [xs[1 + i] + before[i] + after[i] for i in range(m)] + [xs[-1]]
        new_pads = np.array([[0, 0]] + [[before[i], after[i]] for i in range(m)] + [[0, 0]], np.int32)
        s2b.opcodeIndex = pad_code()
        s2b.inputs = np.array([x, new_const(new_pads)], np.int32)
        s2b.builtinOptionsType = schema.BuiltinOptions.PadOptions
        s2b.builtinOptions = schema.PadOptionsT()
        t = int(s2b.outputs[0])
        tensors[t].shape = np.array(padded, np.int32)
        # the ops up to the convolution see one image of the padded size, not d of them
        image = [1, 1] + padded[1:] if m == 1 else padded
        for j in chain[1:chain.index(conv)]:
            if op_name(ops[j]) == "RESHAPE":
                set_input(ops[j], 1, np.array(image, np.int32))
            tensors[int(ops[j].outputs[0])].shape = np.array(image, np.int32)
        if m == 1:
            opts.dilationWFactor = int(block[0])
        else:
            opts.dilationHFactor, opts.dilationWFactor = int(block[0]), int(block[1])
        conv_out = [1, 1] + out[1:] if m == 1 else out
        tensors[int(ops[conv].outputs[0])].shape = np.array(conv_out, np.int32)
        for j in chain[chain.index(conv) + 1:-1]:     # a RESHAPE back to [1, w, c]
            set_input(ops[j], 1, np.array(out, np.int32))
            tensors[int(ops[j].outputs[0])].shape = np.array(out, np.int32)
        # the op before BATCH_TO_SPACE_ND writes its output tensor; it goes
        ops[chain[-2]].outputs = np.array([int(ops[b2s].outputs[0])], np.int32)
        drop.add(b2s)
        done += 1
    g.operators = [op for k, op in enumerate(ops) if k not in drop]
    return done


def _evaluate(model_bytes: bytes, indices: list[int], dynamic: list[int], dtype=np.int32):
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
    return ({i: np.array(it.get_tensor(i), dtype=dtype) for i in indices},
            {i: list(np.shape(it.get_tensor(i))) for i in dynamic})
