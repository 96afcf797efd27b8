"""The op registry and what every op unit shares.

An op unit (one module of firmware_gen/ops) registers, per TFLite builtin operator it
compiles, an emit function ``emit(em, k, op)`` that writes the C of layer ``k`` through the
code generator's :class:`~firmware_gen.codegen.Emitter` (``em.comment``, ``em.params``,
``em.array``, ``em.ptr``, ``em.call``), the kernel files it needs and the tests that prove
the kernel bit-exact against TFLM. Fused groups of operators (the DRSN's hot patterns)
register a matcher and a group emitter with :func:`register_fusion`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

ACT_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}


@dataclass
class OpUnit:
    opcode: str
    emit: Callable           # emit(em, k, op)
    kernels: tuple[str, ...]  # files under runtime/kernels
    tests: tuple[str, ...]    # "tests/<file>.py::<test function>"
    module: str
    inplace: bool = False     # may write its output over a same-size input read for the last time
    kernel_name: str = ""     # reported in model_info.json (default dk_<opcode>_s8)
    macs: Callable | None = None   # macs(op): multiply-accumulates of one layer (None: 0)


@dataclass
class Fusion:
    kind: str                # Step.kind
    match: Callable          # match(ops, k, users, outputs) -> Step | None (outputs: the model's)
    emit: Callable           # emit(em, step)
    kernel_name: str
    kernels: tuple[str, ...]
    tests: tuple[str, ...]
    module: str


REGISTRY: dict[str, OpUnit] = {}
FUSIONS: list[Fusion] = []


def register(*opcodes: str, kernels: tuple[str, ...], tests: tuple[str, ...], inplace: bool = False,
             kernel_name: str = "", macs: Callable | None = None):
    """Decorator: ``emit`` compiles these TFLite builtin operators."""
    def deco(fn):
        for opcode in opcodes:
            if opcode in REGISTRY:
                raise ValueError(f"{opcode} is registered twice ({REGISTRY[opcode].module}, {fn.__module__})")
            REGISTRY[opcode] = OpUnit(opcode, fn, tuple(kernels), tuple(tests), fn.__module__, inplace,
                                      kernel_name, macs)
        return fn
    return deco


def register_fusion(kind: str, match: Callable, kernel_name: str, kernels: tuple[str, ...],
                    tests: tuple[str, ...]):
    """Decorator on the group emitter ``emit(em, step)`` of a fused pattern; matchers are
    tried in registration order."""
    def deco(fn):
        FUSIONS.append(Fusion(kind, match, fn, kernel_name, tuple(kernels), tuple(tests), fn.__module__))
        return fn
    return deco


# --- small helpers of the emitters ----------------------------------------------------------

def numel(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


# Bytes per element of the activation types the compiled runtime stores (float32 and uint8
# only as the model's input or output, at a first QUANTIZE or a last DEQUANTIZE / QUANTIZE).
ITEM_BYTES = {"INT8": 1, "UINT8": 1, "FLOAT32": 4}


def nbytes(t) -> int:
    """Bytes of an activation tensor."""
    return numel(t.shape) * ITEM_BYTES.get(t.type, 1)


def check_elementwise(k, op) -> None:
    """One input of the output's shape: an op applied element by element over the input's
    count would otherwise read or write past a tensor (a malformed or hand-made model)."""
    from drsn_edge.errors import UserError
    x, y = op.inputs[0], op.outputs[0]
    if len([t for t in op.inputs if t is not None]) != 1 or list(x.shape) != list(y.shape):
        raise UserError(f"op {k} {op.opcode} ({layer_name(y)}): inputs "
                        f"{[list(t.shape) for t in op.inputs if t is not None]} and output "
                        f"{list(y.shape)}; TFLM takes one input of the output's shape")


def layer_name(tensor) -> str:
    """The Keras layer a tensor came from: TF names tensors like
    'drsn_cw_1/rsbu1_conv1/convolution;...' (first path component is the model)."""
    first = tensor.name.split(";")[0]
    parts = [p for p in first.split("/") if p]
    if len(parts) >= 2:
        return parts[1]
    return parts[0] if parts else f"tensor{tensor.index}"


def act_name(op) -> str:
    return ACT_NAMES[op.options.get("fusedActivationFunction", 0)]


def is_act(t) -> bool:
    """An activation tensor (computed at run time), not a constant."""
    return t is not None and t.data is None


def broadcast(em, p: str, a, b):
    """The dk_broadcast plan of a binary operator's two inputs, as `<p>_bc`."""
    from firmware_gen import quant
    from firmware_gen.params import BROADCAST
    plan = quant.broadcast_plan(a.shape, b.shape)
    em.params(BROADCAST, f"{p}_bc", plan)
    return plan


def same_quant(k, op, tensors) -> None:
    """TFLM requires these inputs quantized like the output (int8 PAD, CONCATENATION...)."""
    from drsn_edge.errors import UserError
    y = op.outputs[0]
    for t in tensors:
        if abs(float(t.scale) - float(y.scale)) > 1e-6 or t.zero_point != y.zero_point:
            raise UserError(f"op {k} {op.opcode} ({layer_name(y)}): input {t.name!r} is quantized "
                            f"(scale {float(t.scale):.6g}, zero point {t.zero_point}) unlike its output "
                            f"(scale {float(y.scale):.6g}, zero point {y.zero_point}); TFLM requires "
                            f"them equal for int8")


# --- steps and the graph helpers of the fusion matchers -------------------------------------

# Ops that only relabel the shape of their input: their output shares the input's memory.
ALIASES = {"RESHAPE", "EXPAND_DIMS", "SQUEEZE"}


@dataclass
class Step:
    """One kernel call of the inference: a single operator, or a fused group of consecutive
    operators whose intermediate tensors are never stored (the debug dump recomputes them
    into a `debug` buffer, one at a time)."""
    kind: str                     # "op", "alias", or a Fusion's kind ("shrink", "conv1d", ...)
    ops: list[int]                # operator indices, in order; the last one's output is stored
    reads: list[int] = field(default_factory=list)    # activation tensors read
    inplace: int | None = None    # the input the output may overwrite
    scratch: int = 0              # bytes of scratch memory during the call
    debug: int = 0                # bytes for one intermediate of the group (debug dump only)
    debug_with_output: bool = False   # the debug call writes the intermediate and the output together
    info: dict = field(default_factory=dict)
    # For a kernel that streams (stream_lead): info -> how many bytes before its input the
    # output may start when the input dies here, so that the two share memory.
    lead: Callable[[dict], int] | None = None

    @property
    def last(self) -> int:
        return self.ops[-1]


def stream_lead(pixels: int, block: int, out_c: int, first_read: Callable[[int], int]) -> int:
    """The lead of a kernel that writes its output pixels (out_c bytes each) in blocks of
    `block`, in order, each block only after reading every input byte it needs:
    first_read(e) is the lowest input byte any output pixel from e on reads (rising with e).
    An output starting `lead` bytes before its input (or earlier) then never overwrites an
    input byte before its last read, so a layer whose input dies with it needs about
    max(input, output) bytes instead of both: the block ending at pixel e writes below
    output + e * out_c, and everything still to be read lies at input + first_read(e) or above."""
    return max([0] + [e * out_c - first_read(e) for e in range(block, pixels, block)])


def checked_axis(where: str, axis: int, rank: int, of: str = "input") -> int:
    """An op's axis option (negative counts from the end) as 0..rank-1, or one line saying
    it does not fit the tensor."""
    if not -rank <= axis < rank:
        from drsn_edge.errors import UserError
        raise UserError(f"{where}: axis {axis} of a rank-{rank} {of}")
    return axis % rank


def per_channel(t, channels: int) -> bool:
    return t is not None and numel(t.shape) == channels and (len(t.shape) == 0 or t.shape[-1] == channels)


def positions_channels(shape) -> tuple[int, int] | None:
    """[1, L, C] or [1, 1, L, C] -> (L, C)."""
    dims = [int(d) for d in shape]
    if len(dims) < 2 or any(d != 1 for d in dims[:-2]):
        return None
    return dims[-2], dims[-1]


def only_used_by(users, tensor, k: int, outputs) -> bool:
    """Op k is the tensor's only reader and it is none of the model's outputs (`outputs`, a
    set of tensor indices), so a fused kernel need not store it."""
    return tensor.index not in outputs and users.get(tensor.index, []) == [k]


def same_memory(ops):
    """tensor -> the tensor whose bytes it is (through RESHAPE, EXPAND_DIMS, SQUEEZE)."""
    src = {op.outputs[0].index: op.inputs[0].index for op in ops if op.opcode in ALIASES and is_act(op.inputs[0])}

    def root(i):
        while i in src:
            i = src[i]
        return i
    return root
