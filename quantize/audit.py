"""Op audit of a .tflite model: is every op an int8 kernel that TFLite Micro has?

"It runs in the TFLM host runtime" proves nothing: TFLM also runs float ops. So the audit
reads the flatbuffer itself and checks, op by op:

- the op is on an explicit allow-list of builtins with an int8 TFLM kernel;
- every tensor flowing into or out of it is int8 (constants may also be int32: biases and
  shape or axis operands);
- no QUANTIZE / DEQUANTIZE inside the graph (a float↔int8 boundary means a float island;
  an int8→int8 QUANTIZE, a pure integer requantize that TFLM implements, is accepted only
  when the caller allows it). One exception, for a user's model only (allow_float_output):
  a DEQUANTIZE int8→float32 writing one of the model's outputs, which no op reads (a model
  converted with inference_output_type = tf.float32), or a QUANTIZE int8→uint8 likewise
  (tf.uint8), and a QUANTIZE float32→int8 or uint8→int8 as the first op, the only reader
  of the model's one input (the converter's default float32 input, or
  inference_input_type = tf.uint8); every other tensor stays int8;
- no op that computes shapes at run time (SHAPE, STRIDED_SLICE of a shape, PACK, ...) and no
  tensor with a dynamic (-1) dimension: the firmware plans its memory from static shapes
  (a STRIDED_SLICE of int8 data with constant begin/end/strides, or a SLICE with constant
  begin/size, is a copy, and allowed; so are PACK, UNPACK and a GATHER with constant indices
  of int8 data).

Each op is listed with its tensors' dtypes, shapes, quantization and the Keras layer it
came from, recovered from the tensor names the converter keeps
("<model>_1/<layer>_1/<tf op>;...").

Standalone: `python -m quantize.audit model.tflite [more.tflite ...]`.
"""

from __future__ import annotations

import re
import struct
import sys
from pathlib import Path

import numpy as np

from drsn_edge.errors import UserError

# Builtins with an int8 kernel in TFLite Micro that a static-shape CNN can use.
TFLM_INT8_OPS = frozenset({
    "ABS", "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D",
    "EXPAND_DIMS", "FULLY_CONNECTED", "HARD_SWISH", "LEAKY_RELU", "LOGISTIC", "MAXIMUM",
    "MAX_POOL_2D", "MEAN", "MINIMUM", "MUL", "PAD", "RELU", "RELU6", "RESHAPE", "SOFTMAX",
    "SQUEEZE", "SUB", "SUM", "TANH", "TRANSPOSE",
    # more that users' models bring (image and audio CNNs): TFLM has int8 kernels for them
    "PADV2", "PRELU", "ELU", "LOG_SOFTMAX", "L2_NORMALIZATION", "SQUARED_DIFFERENCE",
    "RESIZE_NEAREST_NEIGHBOR", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "BATCH_TO_SPACE_ND",
    "SPACE_TO_BATCH_ND", "TRANSPOSE_CONV",
    # Keras GlobalMaxPooling (REDUCE_MAX), Resizing / UpSampling2D bilinear (RESIZE_BILINEAR), tf.split (SPLIT, SPLIT_V), tf.slice (SLICE, when
    # its begin and size are constant: see static_slice)
    "REDUCE_MAX", "SPLIT", "SPLIT_V", "RESIZE_BILINEAR",
    # unrolled Keras RNNs (UNPACK), tf.stack (PACK), tf.gather with constant indices (GATHER):
    # int8 copies when their data is int8 (see data_copy); attention (BATCH_MATMUL), REFLECT /
    # SYMMETRIC tf.pad (MIRROR_PAD), tf.math.rsqrt (RSQRT)
    "PACK", "UNPACK", "GATHER", "BATCH_MATMUL", "MIRROR_PAD", "RSQRT",
})
# Ops whose output shape depends on run-time values, or that exist to compute shapes.
DYNAMIC_SHAPE_OPS = frozenset({
    "SHAPE", "STRIDED_SLICE", "PACK", "UNPACK", "SLICE", "GATHER", "GATHER_ND", "FILL",
    "RANGE", "BROADCAST_TO", "BROADCAST_ARGS", "WHERE", "TILE", "DYNAMIC_UPDATE_SLICE",
})
BOUNDARY_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})
CONST_TYPES = frozenset({"INT8", "INT32"})


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    return schema


def _names(enum) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_")}


def layer_of(tensor_name: str, known: list[str] | tuple[str, ...] = ()) -> str:
    """The Keras layer a converted tensor came from: the path segment after the model's
    scope, without the "_1" suffix Keras adds when the graph is traced for export; with
    `known` layer names, the longest one the segment starts with (so a helper op such as
    "rsbu1_shrink_pos" maps to its layer "rsbu1_shrink")."""
    first = tensor_name.split(";")[0]
    parts = first.split("/")
    if len(parts) < 2:
        return ""
    seg = parts[1]
    if known:
        hits = [k for k in known if seg == k or seg.startswith(k + "_")]
        if hits:
            return max(hits, key=len)
    return re.sub(r"_\d+$", "", seg)


REGENERATE = "regenerate it with `make quantize`"
# What to do with a model of one's own that is damaged or not fully int8.
USER_FIX = ("convert it with full-integer quantization: tf.lite.TFLiteConverter with "
            "optimizations = [tf.lite.Optimize.DEFAULT], a representative_dataset, "
            "supported_ops = [TFLITE_BUILTINS_INT8]; inference_input_type/output_type int8, uint8 or "
            "the default float32")


def _parse(model_bytes: bytes, where: str, verify: bool = True, fix: str = REGENERATE):
    """The model as flatbuffer objects. A truncated or garbage file makes the generated
    reader fail with struct.error, IndexError, ValueError...; every one of them is a
    UserError naming the file. verify=False skips TensorFlow's verifier (importing
    TensorFlow takes seconds); the structural checks below still run."""
    schema = _schema()
    if len(model_bytes) < 16 or bytes(model_bytes[4:8]) != b"TFL3":
        raise UserError(f"{where} is not a TFLite flatbuffer (no 'TFL3' identifier, {len(model_bytes)} "
                        f"bytes); {fix}")
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))
        _check_structure(model, len(model_bytes))
    except UserError:
        raise
    except Exception as exc:
        kind = "struct.error" if isinstance(exc, struct.error) else type(exc).__name__
        raise UserError(f"{where} is corrupted or truncated ({kind}: {exc}); {fix}") from None
    if verify:
        _verify(model_bytes, where)
    return model


_ITEM_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1}   # TensorType -> bytes per element


def _check_structure(model, size: int) -> None:
    """Every index inside the model points at something that exists, and every constant
    holds as many bytes as its shape says: the code generator and TFLM trust both."""
    for buf in model.buffers or []:
        # Offset buffers live past the flatbuffer (models > 2 GB); they must be in the file.
        if getattr(buf, "offset", 0) and buf.offset + buf.size > size:
            raise ValueError("buffer beyond end of file")
    if not model.subgraphs:
        raise ValueError("no subgraph")
    n_buffers, n_codes = len(model.buffers or []), len(model.operatorCodes or [])
    g = model.subgraphs[0]
    tensors = g.tensors or []
    if g.inputs is None or g.outputs is None or not len(g.inputs) or not len(g.outputs):
        raise ValueError("the graph has no input or no output")
    for j in list(g.inputs) + list(g.outputs):
        if not 0 <= j < len(tensors):
            raise ValueError(f"graph input/output tensor {j} does not exist")
    for i, op in enumerate(g.operators or []):
        if not 0 <= op.opcodeIndex < n_codes:
            raise ValueError(f"op {i} has opcode index {op.opcodeIndex} of {n_codes}")
        for j in list(op.inputs if op.inputs is not None else []) + list(op.outputs if op.outputs is not None else []):
            if not -1 <= j < len(tensors):
                raise ValueError(f"op {i} uses tensor {j}, which does not exist")
    for t in tensors:
        shape = [int(d) for d in (t.shape if t.shape is not None else [])]
        if any(d < 0 for d in shape) and t.shapeSignature is None:
            raise ValueError(f"tensor {t.name!r} has shape {shape}")
        if not 0 <= t.buffer < max(n_buffers, 1):
            raise ValueError(f"tensor {t.name!r} uses buffer {t.buffer} of {n_buffers}")
        data = model.buffers[t.buffer].data if n_buffers else None
        item = _ITEM_BYTES.get(int(t.type))
        if data is not None and len(data) and item and len(data) != item * int(np.prod(shape or [1])):
            raise ValueError(f"constant {t.name!r} holds {len(data)} bytes, its shape {shape} needs "
                             f"{item * int(np.prod(shape or [1]))}")


def _verify(model_bytes: bytes, where: str) -> None:
    """The flatbuffer verifier (inside the TFLite interpreter) catches truncation and bad
    offsets that lazy Python parsing can miss."""
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings
    try:
        import tensorflow as tf
    except ImportError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tf.lite.Interpreter(model_content=bytes(model_bytes),
                                experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
        except ValueError as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else "verification failed"
            raise UserError(f"{where} is corrupted or truncated ({msg}); regenerate it with "
                            f"`make quantize`") from None


def _tensor_info(t, buffers, type_names) -> dict:
    q = t.quantization
    scales = [] if q is None or q.scale is None else [float(s) for s in np.asarray(q.scale).ravel()]
    zps = [] if q is None or q.zeroPoint is None else [int(z) for z in np.asarray(q.zeroPoint).ravel()]
    buf = buffers[t.buffer] if t.buffer < len(buffers) else None
    const = buf is not None and ((buf.data is not None and len(buf.data) > 0) or getattr(buf, "offset", 0) > 0)
    shape = [int(d) for d in (t.shape if t.shape is not None else [])]
    sig = [int(d) for d in t.shapeSignature] if t.shapeSignature is not None else shape
    name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
    info = {"name": name, "dtype": type_names.get(t.type, str(t.type)).lower(), "shape": shape,
            "const": bool(const), "dynamic": any(d < 0 for d in sig)}
    if scales:
        info["scale"] = scales[0] if len(scales) == 1 else scales
        info["zero_point"] = zps[0] if len(zps) == 1 else zps
        if len(scales) > 1:
            info["quantized_dimension"] = int(q.quantizedDimension)
    return info


def _nbytes(info: dict) -> int:
    size = {"int8": 1, "uint8": 1, "int16": 2, "float16": 2, "int32": 4, "float32": 4, "int64": 8}
    return int(np.prod(info["shape"] or [1])) * size.get(info["dtype"], 4)


def inspect(model_bytes: bytes, where: str = "model", known_layers=(), allow_requantize: bool = False,
            verify: bool = True, fix: str = REGENERATE, allow_float_output: bool = False) -> dict:
    """Every op with its tensors and layer, the model's input/output quantization, sizes,
    and the list of problems (empty when the model is fully int8 for TFLM).
    allow_float_output: accept a user model's float32 or uint8 interface: a final DEQUANTIZE
    int8→float32 or QUANTIZE int8→uint8 writing the model's output, a first QUANTIZE
    float32→int8 or uint8→int8 reading its input."""
    schema = _schema()
    model = _parse(model_bytes, where, verify, fix)
    op_names = _names(schema.BuiltinOperator)
    type_names = _names(schema.TensorType)
    g = model.subgraphs[0]
    tensors = [_tensor_info(t, model.buffers, type_names) for t in g.tensors]
    ops, problems = [], []
    float_outputs = set()   # graph outputs a DEQUANTIZE (or QUANTIZE to uint8) writes, when accepted
    graph_outputs = [int(j) for j in g.outputs]
    read = {int(j) for op in g.operators or [] if op.inputs is not None for j in op.inputs}
    float_input = None      # the graph input a first QUANTIZE reads (float32 or uint8), when accepted
    input_readers = [i for i, op in enumerate(g.operators or []) if len(g.inputs) == 1
                     and op.inputs is not None and int(g.inputs[0]) in [int(j) for j in op.inputs]]
    for i, op in enumerate(g.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        # Newer files keep the code in builtinCode, older ones in deprecatedBuiltinCode.
        opcode = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = op_names.get(opcode, f"BUILTIN_{opcode}")
        if opcode == schema.BuiltinOperator.CUSTOM:
            cc = code.customCode
            name = f"CUSTOM({cc.decode() if isinstance(cc, bytes) else cc})"
        ins = [tensors[j] for j in (op.inputs if op.inputs is not None else []) if j >= 0]
        outs = [tensors[j] for j in (op.outputs if op.outputs is not None else []) if j >= 0]
        layer = next((layer_of(t["name"], known_layers) for t in outs if layer_of(t["name"], known_layers)), "")
        if not layer:
            layer = next((layer_of(t["name"], known_layers) for t in ins
                          if not t["const"] and layer_of(t["name"], known_layers)), "")
        entry = {"index": i, "op": name, "layer": layer,
                 "inputs": [{k: v for k, v in t.items() if k != "dynamic"} for t in ins],
                 "outputs": [{k: v for k, v in t.items() if k != "dynamic"} for t in outs]}
        ops.append(entry)

        where_op = f"op {i} {name} (layer {layer!r})" if layer else f"op {i} {name}"
        variable = [t for t in ins if not t["const"]] + outs
        # An int32 activation is a shape computed at run time (a model converted with a
        # dynamic batch dimension computes Flatten's shape with SHAPE/STRIDED_SLICE/PACK),
        # not a float fallback.
        shapes_t = [t for t in variable if t["dtype"] == "int32"]
        float_t = [t for t in variable if t["dtype"] not in ("int8", "int32")] + \
                  [t for t in ins if t["const"] and t["dtype"] not in ("int8", "int32")]
        # writes one of the model's outputs, which no op reads (the last op, unless there are several)
        final_dequantize = (
            allow_float_output and op.outputs is not None and len(op.outputs) == 1
            and int(op.outputs[0]) in graph_outputs and int(op.outputs[0]) not in read
            and (name, outs[0]["dtype"] if outs else None) in (("DEQUANTIZE", "float32"), ("QUANTIZE", "uint8"))
            and len(ins) == 1 and not ins[0]["const"] and ins[0]["dtype"] == "int8"
            and not isinstance(ins[0].get("scale"), list) and not isinstance(outs[0].get("scale"), list))
        first_quantize = (
            allow_float_output and name == "QUANTIZE" and i == 0 and input_readers == [0]
            and op.inputs is not None and list(op.inputs) == [int(g.inputs[0])]
            and len(ins) == 1 and not ins[0]["const"] and ins[0]["dtype"] in ("float32", "uint8")
            and not isinstance(ins[0].get("scale"), list)
            and len(outs) == 1 and outs[0]["dtype"] == "int8" and not isinstance(outs[0].get("scale"), list))
        # STRIDED_SLICE of int8 data with constant begin/end/strides (Keras Cropping) is a
        # copy; on an int32 shape (a dynamic batch's Flatten) it computes shapes.
        static_slice = (name in ("STRIDED_SLICE", "SLICE") and len(ins) == {"STRIDED_SLICE": 4, "SLICE": 3}[name]
                        and ins[0]["dtype"] == "int8" and not ins[0]["const"] and all(t["const"] for t in ins[1:]))
        # PACK / UNPACK / GATHER (constant indices) of int8 data copy bytes; of int32 shapes
        # (a dynamic batch's Flatten) they compute shapes.
        data_copy = (name in ("PACK", "UNPACK", "GATHER") and bool(variable)
                     and all(t["dtype"] == "int8" for t in variable))
        if final_dequantize:
            float_outputs.add(int(op.outputs[0]))
        elif first_quantize:
            float_input = int(g.inputs[0])
        elif name in BOUNDARY_OPS:
            requant = name == "QUANTIZE" and all(t["dtype"] == "int8" for t in variable)
            if not (requant and allow_requantize):
                kind = "int8→int8 requantize" if requant else \
                    f"{'/'.join(t['dtype'] for t in variable[:1])}→{'/'.join(t['dtype'] for t in outs)}"
                note = ""
                if allow_float_output:
                    note = (" (only a first QUANTIZE reading the model's float32 or uint8 input, or a "
                            "last one writing its uint8 output, is accepted)"
                            if name == "QUANTIZE" and not requant else
                            " (only a final DEQUANTIZE writing the model's float32 output is accepted)")
                problems.append((1, f"{where_op} is a {kind} boundary inside the graph{note}"))
        elif name == "TILE":   # Keras UpSampling (nearest); a data op, not a shape op
            problems.append((0, f"{where_op} has no kernel in the TFLM host interpreter the board is "
                                f"checked against; for UpSampling use Resizing(interpolation='nearest'), "
                                f"which converts to RESIZE_NEAREST_NEIGHBOR"))
        elif name in DYNAMIC_SHAPE_OPS and not static_slice and not data_copy:
            problems.append((2, f"{where_op} computes shapes at run time; use static shapes"))
        elif name not in TFLM_INT8_OPS and not static_slice:
            problems.append((0, f"{where_op} is not an int8 builtin TFLite Micro implements"))
        if shapes_t and name not in DYNAMIC_SHAPE_OPS and name not in BOUNDARY_OPS:
            problems.append((2, f"{where_op} takes a shape computed at run time "
                                f"({shapes_t[0]['name']!r}); use static shapes"))
        if float_t and name not in BOUNDARY_OPS and not final_dequantize and not first_quantize:
            t = float_t[0]
            problems.append((0, f"{where_op} has a {t['dtype']} tensor {t['name']!r}; it fell back to float"))
        dyn = [t for t in ins + outs if t["dynamic"]]
        if dyn:
            problems.append((2, f"{where_op} has a dynamic shape in {dyn[0]['name']!r}"))

    def io(index):
        t = tensors[index]
        return {"name": t["name"], "dtype": t["dtype"], "shape": t["shape"],
                "scale": t.get("scale"), "zero_point": t.get("zero_point")}

    for label, idx in (("input", g.inputs), ("output", g.outputs)):
        for j in idx:
            if tensors[j]["dtype"] != "int8" and j not in float_outputs and j != float_input:
                problems.append((0, f"model {label} {tensors[j]['name']!r} is {tensors[j]['dtype']}, not int8"))

    const_bytes = sum(_nbytes(t) for t in tensors if t["const"])
    act = [_nbytes(t) for t in tensors if not t["const"]]
    counts: dict[str, int] = {}
    for o in ops:
        counts[o["op"]] = counts.get(o["op"], 0) + 1
    problems.sort(key=lambda p: p[0])
    return {
        "ops": ops,
        "op_counts": counts,
        "all_int8": not problems,
        "problems": [p[1] for p in problems],
        "input": io(g.inputs[0]),
        "output": io(g.outputs[0]),
        "outputs": [io(j) for j in g.outputs],
        "sizes": {"model_bytes": len(model_bytes), "constant_bytes": const_bytes,
                  "activation_bytes_total": sum(act), "largest_activation_bytes": max(act, default=0),
                  "tensors": len(tensors), "ops": len(ops)},
    }


def audit(model_bytes: bytes, where: str = "model", known_layers=(), allow_requantize: bool = False,
          verify: bool = True, user: bool = False) -> dict:
    """inspect(), raising a one-line UserError naming the first problems' ops and layers.
    user: the model is one of the user's own (--model), so the advice is how to convert
    it, not `make quantize`; an int8->int8 QUANTIZE in it (the converter's requantization
    before a PACK or CONCATENATION whose inputs differ in scale, e.g. Keras TimeDistributed)
    is accepted: TFLM and the compiled runtime both run it."""
    report = inspect(model_bytes, where, known_layers, allow_requantize or user, verify,
                     USER_FIX if user else REGENERATE, allow_float_output=user)
    if report["problems"]:
        p = report["problems"]
        more = f"; and {len(p) - 3} more" if len(p) > 3 else ""
        fix = USER_FIX if user else "quantize with the QAT pipeline (`make quantize`)"
        if user and ("is not an int8 builtin TFLite Micro implements" in p[0] or "TILE" in p[0]):
            fix = ("neither back end can run it: build that layer from ops TFLite Micro has "
                   "(README, Bring your own model) and convert again")
        elif user and any("dynamic shape" in q for q in p):
            fix = ("give every dimension a fixed size before converting (keras.Input(shape, "
                   "batch_size=1) with no None in shape), so every shape is static")
        elif user and any("at run time" in q for q in p):
            fix = ("build that layer from ops TFLite Micro runs with static shapes (README, Bring "
                   "your own model) and convert again")
        raise UserError(f"{where} {'cannot be deployed' if user else 'is not fully int8 for TFLite Micro'}: "
                        f"{'; '.join(p[:3])}{more}; {fix}")
    return report


# What make_static did to the models read here, by their new bytes (firmware.json says it).
STATIC_NOTES: dict[bytes, dict] = {}


def static_model(data: bytes) -> tuple[bytes, dict | None]:
    from quantize.static_shapes import make_static
    out, note = make_static(data)
    if note:
        STATIC_NOTES[out] = note
    return out, note


def read_model(path: str | Path, window: int | None = None, user: bool = False) -> bytes:
    """The bytes of the int8 .tflite at `path`, once it is known to be one the firmware,
    the code generator and the HIL runner can use: present, readable, a whole flatbuffer,
    fully int8 with TFLM kernels, one input of shape [1, window, 1] (when `window` is
    given). Anything else is a UserError naming the file and what to do.

    user: a model of the user's own (--model): no window check (it keeps its own input
    shape, any rank), but one input and one output, a batch of 1, and advice on how to
    convert it rather than `make quantize`."""
    path = Path(path)
    if user and path.is_dir():
        raise UserError(f"--model {path} is a directory; give the path of a fully-int8 .tflite file")
    if not path.is_file():
        if user:
            raise UserError(f"--model {path} does not exist; give the path of a fully-int8 "
                            f".tflite file (firmware.model_path)")
        raise UserError(f"{path} does not exist; run `make quantize` first (firmware.model picks "
                        f"model_int8.tflite or model_ptq_int8.tflite under --build-dir/model)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc.strerror}); check its permissions") from None
    if user:
        # A model converted with a dynamic batch: its run-time shape ops become constants
        # (quantize/static_shapes.py), once the file is known to be a whole flatbuffer.
        _parse(data, str(path), verify=False, fix=USER_FIX)
        data = static_model(data)[0]
    # TensorFlow's verifier is skipped: it costs seconds to import, and _parse's own
    # structural checks cover what the later stages index.
    report = audit(data, str(path), verify=False, user=user)
    shape = report["input"]["shape"]
    if user:
        _check_user_io(data, path)
    if window is not None and shape != [1, window, 1]:
        raise UserError(f"{path} takes input {shape}, but data.window = {window} needs "
                        f"[1, {window}, 1]; train and quantize with this config (`make train "
                        f"quantize`) or set data.window to the model's")
    return data


def _check_user_io(data: bytes, path: Path) -> None:
    """One input and one output tensor, each int8 (the output may be the float32 of a final
    DEQUANTIZE, the input the float32 of a first QUANTIZE; either may be uint8) with a batch
    of 1: what the firmware's model API and the serial protocol carry."""
    g = _parse(data, str(path), verify=False, fix=USER_FIX).subgraphs[0]
    if len(g.inputs) != 1 or len(g.outputs) < 1:
        raise UserError(f"{path} has {len(g.inputs)} inputs and {len(g.outputs)} outputs; the firmware "
                        f"deploys models with one input tensor and one or more output tensors")
    for label, j in [("input", g.inputs[0])] + [("output", k) for k in g.outputs]:
        t = g.tensors[j]
        shape = [int(d) for d in (t.shape if t.shape is not None else [])]
        q = t.quantization
        # A float32 input or output is one the audit accepted: read by a first QUANTIZE,
        # written by a final DEQUANTIZE.
        float_output = int(t.type) == _schema().TensorType.FLOAT32
        if not float_output and (q is None or q.scale is None or len(q.scale) != 1 or q.zeroPoint is None):
            raise UserError(f"{path}: the model's {label} has no per-tensor int8 quantization "
                            f"(scale and zero point); {USER_FIX}")
        if not shape or shape[0] != 1 or int(np.prod(shape)) < 1:
            raise UserError(f"{path}: the model's {label} has shape {shape}; the firmware runs "
                            f"one example at a time, so convert it with a batch dimension of 1 "
                            f"(e.g. [1, ...])")


def describe(report: dict) -> str:
    """The op list as a text table."""
    lines = []
    for o in report["ops"]:
        ins = ", ".join(f"{t['dtype']}{t['shape']}" + ("c" if t["const"] else "") for t in o["inputs"])
        outs = ", ".join(f"{t['dtype']}{t['shape']}" for t in o["outputs"])
        lines.append(f"{o['index']:3d} {o['op']:18s} {o['layer']:24s} {ins} -> {outs}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m quantize.audit MODEL.tflite [...]", file=sys.stderr)
        return 2
    code = 0
    for path in map(Path, argv):
        try:
            report = audit(read_model(path), str(path))
            print(describe(report))
            print(f"{path}: all {len(report['ops'])} ops int8 for TFLite Micro "
                  f"({report['sizes']['model_bytes']} bytes)")
        except UserError as exc:
            print(f"audit: error: {exc}", file=sys.stderr)
            code = 2
    return code


if __name__ == "__main__":
    sys.exit(main())
