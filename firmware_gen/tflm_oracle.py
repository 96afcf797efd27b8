"""Read a .tflite model's operators and run it in the TFLM host runtime.

The TFLM host runtime (``tflite-micro`` PyPI package) is the reference the
device must match. ``run`` gives the model's int8 outputs for int8 inputs: the one
way every stage (quantize parity, the firmware self-test, the benchmark, the HIL runner
and its pytest plugin) computes what the board must answer. ``read_operators`` lists the
operators of a model with their tensors' shapes, quantization and constant data, and
``run_capture`` runs the model in TFLM keeping every intermediate tensor, so each
operator's actual int8 inputs and output can be compared with a dk kernel in isolation.
Float windows become int8 inputs with ``drsn_edge.int8.quantize_input``.
"""

from __future__ import annotations

import hashlib

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from tflite_micro.python.tflite_micro import runtime
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from drsn_edge.errors import UserError

_OPCODE_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items()
                 if not name.startswith("_")}
_TYPE_NAMES = {code: name for name, code in vars(schema.TensorType).items()
               if not name.startswith("_")}
_NUMPY_TYPES = {"INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16,
                "INT32": np.int32, "INT64": np.int64, "FLOAT32": np.float32,
                "BOOL": np.bool_}


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    type: str                      # schema TensorType name, e.g. "INT8"
    scales: np.ndarray             # float32, empty when not quantized
    zero_points: np.ndarray        # int64, empty when not quantized
    quantized_dimension: int
    data: np.ndarray | None        # constant contents, None for activations

    @property
    def scale(self) -> float:
        """The per-tensor scale (as a float32 value)."""
        return np.float32(self.scales[0])

    @property
    def zero_point(self) -> int:
        return int(self.zero_points[0])


@dataclass
class Operator:
    index: int
    opcode: str                    # builtin name, e.g. "CONV_2D"
    inputs: list[Tensor | None]    # None for an omitted optional input
    outputs: list[Tensor]
    options: dict = field(default_factory=dict)


def _model(model_bytes: bytes) -> schema.ModelT:
    # Files are checked by quantize.audit.read_model; bytes that reach here unchecked and
    # are damaged still end as one line, not a struct.error from the flatbuffer reader.
    try:
        return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))
    except Exception as exc:
        from drsn_edge.errors import UserError
        raise UserError(f"the {len(model_bytes)}-byte .tflite model is corrupted or truncated "
                        f"({type(exc).__name__}: {exc}); regenerate it with `make quantize`") from None


def _tensor(model: schema.ModelT, sg, index: int) -> Tensor:
    t = sg.tensors[index]
    q = t.quantization
    scales = np.asarray(q.scale if q is not None and q.scale is not None else [],
                        dtype=np.float32)
    zps = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [],
                     dtype=np.int64)
    qdim = int(q.quantizedDimension) if q is not None else 0
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
    type_name = _TYPE_NAMES[t.type]
    data = None
    buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
    if buf is not None and buf.data is not None and len(buf.data) > 0:
        raw = np.asarray(buf.data, dtype=np.uint8).tobytes()
        data = np.frombuffer(raw, dtype=_NUMPY_TYPES[type_name]).reshape(shape).copy()
    name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
    return Tensor(index, name, shape, type_name, scales, zps, qdim, data)


def read_operators(model_bytes: bytes, subgraph: int = 0) -> list[Operator]:
    """The operators of one subgraph, in execution order."""
    model = _model(model_bytes)
    sg = model.subgraphs[subgraph]
    ops = []
    for i, op in enumerate(sg.operators):
        code = runtime.get_builtin_code_from_operator_code(
            model.operatorCodes[op.opcodeIndex])
        opts = dict(vars(op.builtinOptions)) if op.builtinOptions is not None else {}
        ins = [None if j < 0 else _tensor(model, sg, int(j)) for j in op.inputs]
        outs = [_tensor(model, sg, int(j)) for j in op.outputs]
        ops.append(Operator(i, _OPCODE_NAMES[code], ins, outs, opts))
    return ops


def model_inputs(model_bytes: bytes, subgraph: int = 0) -> list[Tensor]:
    model = _model(model_bytes)
    sg = model.subgraphs[subgraph]
    return [_tensor(model, sg, int(j)) for j in sg.inputs]


def model_outputs(model_bytes: bytes, subgraph: int = 0) -> list[Tensor]:
    model = _model(model_bytes)
    sg = model.subgraphs[subgraph]
    return [_tensor(model, sg, int(j)) for j in sg.outputs]


def run(model_bytes: bytes, q: np.ndarray, stop=None, progress: str | None = None) -> np.ndarray | None:
    """The TFLM host runtime's outputs [n, *output_shape] for inputs q [n, *input_shape] of
    the model's input type (int8 for a deployed model); the batch axis of the model's input
    is 1, so the inputs run one at a time. A model with several outputs gives [n, values]:
    each input's outputs flattened one after another in the model's output order (what the
    compiled runtime's output frame holds).

    `stop`: a threading.Event; once set, the run returns None (the HIL runner computes
    this beside the streaming and abandons it on an interrupt). `progress`: a label for a
    progress bar, for long sweeps."""
    interp = interpreter(model_bytes)
    inp, outp = interp.get_input_details(0), interp.get_output_details(0)
    in_shape = tuple(int(d) for d in inp["shape"][1:])
    q = np.asarray(q)
    # No silent cast: float windows cast to int8 would truncate, not quantize.
    if q.dtype != np.dtype(inp["dtype"]):
        raise TypeError(f"the model takes {np.dtype(inp['dtype'])} inputs, got {q.dtype} "
                        f"(quantize float windows with drsn_edge.int8.quantize_input)")
    q = q.reshape(-1, *in_shape)
    n_out = len(_model(model_bytes).subgraphs[0].outputs)
    details = [interp.get_output_details(j) for j in range(n_out)]
    if len({np.dtype(d["dtype"]) for d in details}) > 1:
        raise UserError(f"the model's outputs are of different types "
                        f"({', '.join(str(np.dtype(d['dtype'])) for d in details)}); convert it with one "
                        f"inference_output_type for every output")
    shape = (tuple(int(d) for d in outp["shape"][1:]) if n_out == 1 else
             (sum(int(np.prod(d["shape"][1:])) for d in details),))
    out = np.empty((len(q), *shape), outp["dtype"])
    rows = range(len(q))
    if progress:
        from tqdm import tqdm
        rows = tqdm(rows, desc=progress, unit="win", dynamic_ncols=True, mininterval=0.5, leave=False)
    for i in rows:
        if stop is not None and stop.is_set():
            return None
        interp.set_input(q[i:i + 1], 0)
        interp.invoke()
        if n_out == 1:
            out[i] = np.asarray(interp.get_output(0))[0]
        else:
            out[i] = np.concatenate([np.asarray(interp.get_output(j)).reshape(-1) for j in range(n_out)])
    return out


def interpreter(model_bytes: bytes, subgraph: int = 0, preserve: bool = False):
    """The TFLM host interpreter for a model, with an arena sized from its tensors: the
    runtime's default, ten times the model's bytes, is too small for a model with few
    weights and large activations (a pooling layer on a 40x40x16 input). preserve: keep
    every tensor readable after the run (run_capture)."""
    config = (runtime.InterpreterConfig.kPreserveAllTensors if preserve
              else runtime.InterpreterConfig.kAllocationRecording)
    return runtime.Interpreter.from_bytes(
        model_bytes, arena_size=len(model_bytes) + _arena_estimate(_model(model_bytes), subgraph),
        intrepreter_config=config)


def _arena_estimate(model: schema.ModelT, subgraph: int) -> int:
    """Arena for preserving every tensor: all activations side by side plus
    room for TFLM's own bookkeeping."""
    sg = model.subgraphs[subgraph]
    total = 0
    for t in sg.tensors:
        n = int(np.prod(t.shape)) if t.shape is not None else 1
        total += n * np.dtype(_NUMPY_TYPES.get(_TYPE_NAMES[t.type], np.float32)).itemsize
    return 2 * total + 256 * len(sg.tensors) + 64 * 1024


def run_capture(model_bytes: bytes, inputs: Sequence[np.ndarray],
                subgraph: int = 0) -> dict[int, np.ndarray]:
    """Run the model once in TFLM; return every non-constant tensor by index."""
    model = _model(model_bytes)
    interp = interpreter(model_bytes, subgraph, preserve=True)
    for i, x in enumerate(inputs):
        interp.set_input(x, i)
    interp.invoke()
    sg = model.subgraphs[subgraph]
    captured = {}
    for idx, t in enumerate(sg.tensors):
        buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
        if buf is not None and buf.data is not None and len(buf.data) > 0:
            continue
        got = interp.GetTensor(idx, subgraph)
        # The runtime returns {"dtype", "shape", "tensor_data"}.
        data = got["tensor_data"] if isinstance(got, dict) else got
        captured[idx] = np.array(data).reshape(tuple(int(d) for d in t.shape))
    return captured


def digests(q: np.ndarray) -> np.ndarray:
    """An 8-byte BLAKE2b digest of each input's bytes (uint64 [n]): how the HIL runner
    knows that the quantize stage already ran TFLM on exactly this input."""
    q = np.ascontiguousarray(q)
    rows = q.reshape(len(q), -1).view(np.uint8)
    return np.array([int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8).digest(), "little")
                     for r in rows], dtype=np.uint64)
