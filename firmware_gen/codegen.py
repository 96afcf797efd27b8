"""Generate plain C for one int8 .tflite model: the "compiled runtime".

The device gets no interpreter and no flatbuffer: every operator becomes a call into the
dk kernel library (firmware_gen/runtime) with its quantization arithmetic already done here
(firmware_gen/quant.py mirrors what TFLM computes in its Prepare step), and every activation
lives at a fixed offset of one static arena, planned from the tensors' lifetimes.

Choices made at generation time (plan_steps, plan_arena):
- kernels: every operator is an op unit of firmware_gen/ops (its parameter structs, prepare
  and emit), found through the registry (ops.REGISTRY by TFLite operator, ops.FUSIONS for
  the fused patterns: Conv1D-shaped CONV_2D -> dk_conv1d_s8 on packed weights, the DRSN's
  soft threshold (+ residual ADD), its batch norms left as MUL + ADD, and ABS + MEAN).
  Fused kernels round every intermediate to int8 exactly as TFLM does; the debug dump
  recomputes the intermediates one at a time, so every TFLite layer is still reported.
- memory: buffers live from the step that writes them to the last step that reads them
  (half-step resolution, so a debug buffer fits between steps); element-wise steps write in
  place over an input read for the last time; conv scratch is planned like a tensor, and a
  conv whose scratch sets the arena size widens fewer columns at once.

Output (in `out_dir`):
    model_data.c   weights and biases as const arrays, 16-byte aligned
    model.c        the model: one commented call per layer, implementing model_api.h
    model_info.json  what was generated: ops, arena plan, sizes, hash (for reports/tests)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drsn_edge import artifacts
from drsn_edge.errors import UserError
from firmware_gen import quant
from firmware_gen.ops import FUSIONS, REGISTRY
from firmware_gen.ops.base import ACT_NAMES, ALIASES, Step, is_act as _is_act  # noqa: F401 (ALIASES: public)
from firmware_gen.ops.base import layer_name as _layer_name, nbytes as _nbytes, numel as _numel
from firmware_gen.ops.conv1d import (CONV1D_BLOCKS, CONV1D_SCRATCH_SOFT_LIMIT, CONV1D_SLACK,  # noqa: F401
                                     conv1d_block, conv1d_fast, conv1d_geometry, conv1d_scratch_bytes,
                                     conv1d_small_acc, conv1d_wide, pack_conv1d, pack_conv1d_fast,
                                     small_accumulators)
from firmware_gen.params import Struct
from firmware_gen.tflm_oracle import Operator, Tensor, read_operators, model_inputs, model_outputs

HARNESS_DIR = Path(__file__).resolve().parent / "harness"
RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
ALIGN = 16

@dataclass
class Placement:
    offset: int
    size: int
    first: int   # op index that writes it (-1: the model input)
    last: int    # op index of the last reader (n_ops: the model output)


def _cname(text: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in text)
    return out.strip("_") or "t"



# The DRSN's per-channel thresholds: Keras layer "<unit>_tau" (the MUL alpha * mean|x|) or
# its reshape "<unit>_tau_t"; the converter appends "_<n>" to Keras layer names.
_THRESHOLD_LAYER = re.compile(r"_tau(_t)?(_\d+)?$")


def _is_threshold(tensor: Tensor) -> bool:
    return bool(_THRESHOLD_LAYER.search(_layer_name(tensor)))



# --- fusion: which kernel call computes which operators -------------------------------------

# Element-wise operators whose output may overwrite an input of the same shape once that
# input is read for the last time (each kernel reads element i before writing element i).
INPLACE_OPS = {opcode for opcode, unit in REGISTRY.items() if unit.inplace}



def _consumers(ops: list[Operator]) -> dict[int, list[int]]:
    users: dict[int, list[int]] = {}
    for k, op in enumerate(ops):
        for t in op.inputs:
            if t is not None and t.data is None:
                users.setdefault(t.index, []).append(k)
    return users



def output_set(outputs) -> frozenset[int]:
    """The model's output tensors as a set of indices (one index is one output)."""
    return frozenset([outputs]) if isinstance(outputs, (int, np.integer)) else frozenset(outputs)


def plan_arena(ops, input_index: int, outputs, steps: list[Step]):
    """plan_memory, then shrink the widening block of any conv1d whose scratch sets the
    arena's size (fewer columns widened at once: a little more work, less memory), as long
    as that makes the arena smaller."""
    plan = plan_memory(ops, input_index, outputs, steps)
    while True:
        placed, _, arena = plan
        top = [j for j, st in enumerate(steps) if st.kind == "conv1d" and ("scratch", j) in placed
               and placed[("scratch", j)].offset + placed[("scratch", j)].size == arena]
        undo = []
        for j in top:
            geo = steps[j].info
            smaller = [b for b in CONV1D_BLOCKS if b < geo["block"]]
            if smaller:
                undo.append((j, geo["block"]))
                _set_block(steps[j], smaller[0])
        if not undo:
            return plan
        trial = plan_memory(ops, input_index, outputs, steps)
        if trial[2] >= arena:      # no gain: keep the faster, wider blocks
            for j, block in undo:
                _set_block(steps[j], block)
            return plan_memory(ops, input_index, outputs, steps)
        plan = trial


def _set_block(step: Step, block: int) -> None:
    geo = step.info
    geo["block"] = block
    geo["scratch"] = step.scratch = conv1d_scratch_bytes(geo["in_c"], geo["kernel"], geo["stride"], block)



# Operators with several outputs the compiled runtime takes (ops/split.py, ops/unpack.py): every output is
# placed by the memory planner; the layer table reports the first.
MULTI_OUTPUT_OPS = frozenset({"SPLIT", "SPLIT_V", "UNPACK"})


def plan_steps(ops: list[Operator], outputs) -> list[Step]:
    """Group the operators into kernel calls: fused patterns first (ops.FUSIONS, in order), one
    call per operator otherwise. Only consecutive operators whose intermediates nobody else reads are fused."""
    users = _consumers(ops)
    outputs = output_set(outputs)
    steps: list[Step] = []
    k = 0
    while k < len(ops):
        op = ops[k]
        step = next((st for st in (f.match(ops, k, users, outputs) for f in FUSIONS) if st), None)
        if step is None:
            reads = [t.index for t in op.inputs if _is_act(t)]
            if op.opcode in ALIASES:
                step = Step("alias", [k], reads=reads[:1])
            else:
                step = Step("op", [k], reads=reads)
                out = op.outputs[0]
                if op.opcode in INPLACE_OPS:
                    same = [i for i in reads if _numel(_shape_of(ops, i)) == _nbytes(out)]
                    step.inplace = same[0] if same else None
        steps.append(step)
        k = step.last + 1
    return steps


def _shape_of(ops, index):
    return model_tensor_shape(ops, index)


# --- memory plan ------------------------------------------------------------------------------

def plan_memory(ops: list[Operator], input_index: int, outputs,
                steps: list[Step] | None = None) -> tuple[dict, dict[int, int], int]:
    """Place every activation tensor, scratch and debug buffer in one arena.

    Time runs in half steps: step j reads its inputs and writes its output at 2j + 1, and a
    debug buffer lives at 2j (between the previous step and this one), so it may share bytes
    with this step's output but never with its inputs. A step's output takes its in-place
    input's bytes when that input is read for the last time by the step. Placement is greedy
    first-fit by decreasing size: two buffers share bytes only when their lifetimes do not
    overlap. Returns placements (tensor index, or ("scratch", j) / ("debug", j)), the alias
    map (tensor -> the tensor whose bytes it uses) and the arena size."""
    outputs = output_set(outputs)
    if steps is None:
        steps = plan_steps(ops, outputs)
    alias: dict[int, int] = {}

    def root(i):
        while i in alias:
            i = alias[i]
        return i

    for st in steps:   # shape-only operators share their input's bytes, always
        if st.kind == "alias":
            alias[ops[st.last].outputs[0].index] = st.reads[0]

    def read_later(tensor, j):
        r = root(tensor)
        return any(root(t) == r for st in steps[j + 1:] for t in st.reads)

    streams: dict = {}    # output -> (input it may overlap, lead in bytes)
    life: dict = {input_index: [0, 0]}
    sizes: dict = {input_index: _nbytes(model_tensor(ops, input_index))}   # 4 per value if float32
    for j, st in enumerate(steps):
        now = 2 * j + 1
        for t in st.reads:
            r = root(t)
            life.setdefault(r, [now, now])[1] = max(life[r][1], now)
        outs = ops[st.last].outputs
        out = outs[0]
        if st.kind == "alias":
            continue
        src = st.inplace
        if (src is not None and len(outs) == 1 and out.index not in outputs
                and root(src) not in {root(o) for o in outputs}
                and not read_later(src, j) and sizes.get(root(src)) == _nbytes(out)):
            alias[out.index] = root(src)
            st.info["inplace_of"] = root(src)
            continue
        if st.lead is not None and len(outs) == 1 and st.reads:
            # A streaming kernel whose input dies here: the output may overlap it from
            # `lead` bytes before it (ops.base.stream_lead). Not the model's input: the
            # caller's bytes stay as they were given; nor one of its outputs (read by a later
            # layer too when there are several), which must last until they are copied out.
            r = root(st.reads[0])
            if (r != input_index and r not in {root(o) for o in outputs} and not read_later(r, j)
                    and sum(root(t) == r for t in st.reads) == 1):
                streams[out.index] = (r, -(-st.lead(st.info) // ALIGN) * ALIGN)
        for o in outs:     # several for SPLIT / SPLIT_V, each placed on its own
            life[o.index] = [now, now]
            sizes[o.index] = _nbytes(o)
        if st.scratch:
            life[("scratch", j)] = [now, now]
            sizes[("scratch", j)] = st.scratch
        if st.debug:
            life[("debug", j)] = [now - 1, now if st.debug_with_output else now - 1]
            sizes[("debug", j)] = st.debug
    # steps writing in place still need their scratch/debug buffers
    for j, st in enumerate(steps):
        now = 2 * j + 1
        if st.scratch and ("scratch", j) not in life:
            life[("scratch", j)] = [now, now]
            sizes[("scratch", j)] = st.scratch
        if st.debug and ("debug", j) not in life:
            life[("debug", j)] = [now - 1, now if st.debug_with_output else now - 1]
            sizes[("debug", j)] = st.debug
    for o in outputs:        # every output lives to the end, when the caller copies it out
        life[root(o)][1] = 2 * len(steps) + 1

    # With the stream pairs overlapped or without: whichever needs the smaller arena (a
    # pair's block holds its larger tensor's bytes for both lifetimes, which can cost more
    # than it saves).
    plans = [_place(sizes, life, {})] + ([_place(sizes, life, streams)] if streams else [])
    placed, arena = min(plans, key=lambda pa: pa[1])
    for st in steps:
        out = ops[st.last].outputs[0].index
        if out in streams and placed[out].offset + placed[out].size > placed[streams[out][0]].offset \
                and placed[streams[out][0]].offset + placed[streams[out][0]].size > placed[out].offset:
            st.info["streams_over"] = streams[out][0]
        else:
            st.info.pop("streams_over", None)
    return placed, {i: root(i) for i in list(alias)}, arena


def _place(sizes: dict, life: dict, streams: dict) -> tuple[dict, int]:
    """Greedy first-fit by decreasing size: buffers share bytes only when their lifetimes
    do not overlap, or as a stream pair (output `lead` bytes before its input)."""
    # Stream pairs (and chains of them) are placed as one block: the output `lead` bytes
    # before its input, the block living from its first member's birth to its last's death.
    aligned = {t: -(-n // ALIGN) * ALIGN for t, n in sizes.items()}
    rel = {t: 0 for t in sizes}
    members = {t: [t] for t in sizes}      # group -> its tensors
    group = {t: t for t in sizes}
    for o, (i, lead) in streams.items():
        gi, go = group[i], group[o]
        shift = rel[i] - lead - rel[o]      # moves o's group so that o sits lead bytes before i
        for t in members.pop(go):
            group[t], rel[t] = gi, rel[t] + shift
            members[gi].append(t)
    blocks: dict = {}
    for t in sizes:
        lo, hi, first, last = blocks.get(group[t], (rel[t], rel[t] + aligned[t], *life[t]))
        blocks[group[t]] = (min(lo, rel[t]), max(hi, rel[t] + aligned[t]), min(first, life[t][0]),
                            max(last, life[t][1]))
    at: dict = {}
    for g in sorted(blocks, key=lambda g: (-(blocks[g][1] - blocks[g][0]), blocks[g][2], str(g))):
        lo, hi, first, last = blocks[g]
        size = hi - lo
        busy = sorted((o, o + (blocks[h][1] - blocks[h][0])) for h, o in at.items()
                      if not (blocks[h][3] < first or last < blocks[h][2]))
        offset = 0
        for b_lo, b_hi in busy:
            if offset + size <= b_lo:
                break
            offset = max(offset, b_hi)
        at[g] = offset
    placed = {t: Placement(at[group[t]] + rel[t] - blocks[group[t]][0], aligned[t], *life[t]) for t in sizes}
    return placed, max((p.offset + p.size for p in placed.values()), default=0)


def model_tensor(ops, index) -> Tensor:
    for op in ops:
        for t in list(op.inputs) + op.outputs:
            if t is not None and t.index == index:
                return t
    raise KeyError(index)


def model_tensor_shape(ops, index):
    return model_tensor(ops, index).shape


# --- C emission -------------------------------------------------------------------------------


# --- C emission -------------------------------------------------------------------------------

OPTIMIZE = ("speed", "size")


# Layers that use each weight once per inference keep int8 weights in speed mode while they
# hold under this share of the model's MACs (Emitter.weights8).
ONCE_MACS_SHARE = 0.05


class Emitter:
    def __init__(self, model_bytes: bytes, name: str, optimize: str = "speed",
                 size_layers: frozenset[int] | None = None):
        if optimize not in OPTIMIZE:
            raise UserError(f"optimize = {optimize!r}: use one of {', '.join(OPTIMIZE)}")
        self.model_bytes = model_bytes
        self.name = name
        self.optimize = optimize
        # layers whose fast-path records keep int8 weights (all of them in size mode)
        self.size_layers = frozenset(size_layers or ())
        self.weights8_used: set[int] = set()
        self.layer_bytes: dict[int, int] = {}
        self.ops = read_operators(model_bytes)
        inputs = model_inputs(model_bytes)
        if len(inputs) != 1:
            raise UserError(f"model has {len(inputs)} inputs; the compiled runtime supports one")
        self.input = inputs[0]
        # The model's outputs, in its order: the output frame holds them one after another.
        self.outputs = model_outputs(model_bytes)
        self.output_indices = frozenset(t.index for t in self.outputs)
        self.data_lines: list[str] = []
        self.decls: list[str] = []
        self.body: list[str] = []
        self.layers: list[dict] = []
        self.const_names: dict[int, str] = {}
        self.weight_bytes = 0
        # The input is int8, or float32 / uint8 when the only op reading it is a QUANTIZE to
        # int8 (a model converted with the converter's default float32 interface, or with
        # inference_input_type = tf.uint8, around int8 internals).
        readers = [op for op in self.ops if any(t is not None and t.index == self.input.index
                                                for t in op.inputs)]
        if self.input.type != "INT8" and not (
                self.input.type in ("FLOAT32", "UINT8") and len(readers) == 1
                and readers[0].opcode == "QUANTIZE" and readers[0].outputs[0].type == "INT8"):
            raise UserError(f"model input {self.input.name!r} is {self.input.type}, not int8 (nor float32 "
                            f"or uint8 read only by a QUANTIZE to int8); convert with int8, uint8 or "
                            f"float32 input")
        # Each output is int8, float32 written by a DEQUANTIZE, or uint8 written by a QUANTIZE
        # from int8 (inference_output_type = tf.float32 or tf.uint8).
        writer = {t.index: op for op in self.ops for t in op.outputs}
        for out in self.outputs:
            w = writer.get(out.index)
            if w is None:
                raise UserError(f"model output {out.name!r} is not computed by any op; the compiled "
                                f"runtime takes outputs the graph computes")
            if out.type != "INT8" and not (
                    (out.type == "FLOAT32" and w.opcode == "DEQUANTIZE")
                    or (out.type == "UINT8" and w.opcode == "QUANTIZE" and w.inputs[0].type == "INT8")):
                raise UserError(f"model output {out.name!r} is {out.type}, not int8 (nor float32 from a "
                                f"DEQUANTIZE, nor uint8 from a QUANTIZE); convert with int8, uint8 or "
                                f"float32 output")
        types = sorted({dtype_name(t) for t in self.outputs})
        if len(types) > 1:
            raise UserError(f"the model's {len(self.outputs)} outputs are of different types "
                            f"({', '.join(types)}); the output frame carries one element type: convert "
                            f"with one inference_output_type")
        macs = [layer_macs(op) for op in self.ops]
        once = [m for op, m in zip(self.ops, macs) if op.opcode == "FULLY_CONNECTED"
                and _numel(op.outputs[0].shape) == int(op.outputs[0].shape[-1])]
        self.once_share = sum(once) / max(1, sum(macs))
        self.steps = plan_steps(self.ops, self.output_indices)
        self.placed, self.alias, self.arena = plan_arena(self.ops, self.input.index, self.output_indices,
                                                         self.steps)
        self.scratch_bytes = sum(p.size for key, p in self.placed.items() if isinstance(key, tuple)
                                 and key[0] == "scratch")

    # tensors
    def ptr(self, t: Tensor, role: str = "const") -> str:
        if t.data is not None:
            return self.const(t, f"L{self.k}_{role}")
        r = self.alias.get(t.index, t.index)
        return f"(arena + {self.placed[r].offset})"

    def const(self, t: Tensor, name: str) -> str:
        if t.index in self.const_names:
            return self.const_names[t.index]
        ctype = {"INT8": "int8_t", "INT32": "int32_t"}.get(t.type)
        if ctype is None:
            raise UserError(f"constant tensor {t.name!r} is {t.type}; the compiled runtime takes "
                            f"int8 weights and int32 biases only")
        flat = t.data.reshape(-1)
        self.weight_bytes += flat.nbytes
        self.layer_bytes[self.k] = self.layer_bytes.get(self.k, 0) + flat.nbytes
        per_line = 16 if ctype == "int8_t" else 8
        rows = [", ".join(str(int(v)) for v in flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
        self.data_lines.append(f"/* layer {self.k} ({_layer_name(self.ops[self.k].outputs[0])}): "
                               f"{list(t.shape)} {t.type.lower()} {self.qdesc(t).split(' ', 1)[-1]} */")
        self.data_lines.append(f"const {ctype} {name}[{len(flat)}] __attribute__((aligned({ALIGN}))) = {{")
        self.data_lines += [f"    {r}," for r in rows]
        self.data_lines.append("};")
        self.decls.append(f"extern const {ctype} {name}[{len(flat)}];")
        self.const_names[t.index] = name
        return name

    def static(self, ctype: str, name: str, init: str) -> str:
        self.body.append(f"        static const {ctype} {name} = {init};")
        return name

    def array(self, ctype: str, name: str, values) -> str:
        vals = ", ".join(str(int(v)) for v in values)
        self.body.append(f"        static const {ctype} {name}[{len(values)}] = {{{vals}}};")
        return name

    # header comment per layer
    @staticmethod
    def qdesc(t: Tensor) -> str:
        if len(t.scales) == 1:
            return f"{list(t.shape)} s={float(t.scale):.6g} zp={t.zero_point}"
        if len(t.scales) > 1:
            return f"{list(t.shape)} per-channel s=[{float(t.scales.min()):.3g}..{float(t.scales.max()):.3g}]"
        return f"{list(t.shape)} {t.type.lower()}"

    def comment(self, k: int, op: Operator, extra: str = "") -> None:
        layer = _layer_name(op.outputs[0])
        self.body.append("")
        self.body.append(f"    /* [{k}] {op.opcode} ({layer})")
        for j, t in enumerate(op.inputs):
            if t is not None:
                self.body.append(f"     *   in{j}:  {self.qdesc(t)}")
        self.body.append(f"     *   out:  {self.qdesc(op.outputs[0])}")
        if extra:
            self.body.append(f"     *   {extra}")
        self.body.append("     */")
        self.body.append("    {")

    # -----------------------------------------------------------------------------------------
    def params(self, struct: Struct, name: str, src=None, **values) -> str:
        """`static const <struct> name = { .field = value, ... };` with the values read from
        `src` (a quant parameter dataclass or a dict) and `values`."""
        return self.static(struct.name, name, struct.init(src, indent=8, **values))

    def call(self, text: str) -> None:
        """One statement of the layer's block (a kernel call)."""
        self.body.append(f"        {text};")

    def optimize_note(self) -> str:
        if self.optimize == "size":
            return 'optimize = "size": the fast kernels widen int8 weights in the loop'
        budget = sorted(self.weights8_used & self.size_layers)
        once = sorted(self.weights8_used - self.size_layers)
        why = ([f"layers {budget} (flash budget)"] if budget else []) + \
              ([f"one-row FULLY_CONNECTED layers {once} (under {ONCE_MACS_SHARE:.0%} of the MACs)"]
               if once else [])
        if why:
            return f'optimize = "speed", int16 weights but int8 in {" and ".join(why)}'
        return 'optimize = "speed": the fast kernels\' weights widened to int16 here'

    def weights8(self, k: int, uses: int = 2) -> bool:
        """Whether layer k's fast-path records hold int8 weights (firmware.optimize = "size",
        or the layer was picked to meet a flash budget) rather than int16 (faster). Layers
        that use each weight once per inference (`uses`: a one-row FULLY_CONNECTED) keep int8
        in speed mode too when together they hold under ONCE_MACS_SHARE of the model's MACs:
        widening them would save one SXTB16 per two weights, a byte of flash each, for almost
        none of the time (the DRSN's shrinkage FCs: 13 KB for 0.25 % of its instructions; an
        FC autoencoder keeps int16)."""
        if self.optimize == "size" or k in self.size_layers or (uses <= 1 and self.once_share < ONCE_MACS_SHARE):
            self.weights8_used.add(k)
            return True
        return False

    def kernel_name(self, name: str) -> None:
        """The kernel this layer's step calls, when not its op unit's usual one (model_info.json)."""
        self.steps[self.j].info["kernel_name"] = name

    # -----------------------------------------------------------------------------------------
    def emit(self) -> None:
        fusions = {f.kind: f for f in FUSIONS}
        for j, st in enumerate(self.steps):
            self.j = j
            if st.kind in ("op", "alias"):
                k = st.last
                op = self.ops[k]
                unit = REGISTRY.get(op.opcode)
                if unit is None:
                    raise UserError(f"operator {op.opcode} (layer {_layer_name(op.outputs[0])}) has no kernel "
                                    f"in the compiled runtime; supported: {', '.join(sorted(SUPPORTED))}")
                self.k = k
                unit.emit(self, k, op)
                self.body.append("    }")
                self.record(k, kernel=st.info.get("kernel_name") or ("alias" if st.kind == "alias" else
                                                                     unit.kernel_name or f"dk_{op.opcode.lower()}_s8"))
            else:
                fusion = fusions[st.kind]
                self.k = st.last
                fusion.emit(self, st)
                self.body.append("    }")
                for k in st.ops[:-1]:
                    self.record(k, fused_into=st.last, offset=self.placed[("debug", j)].offset)
                self.record(st.last, kernel=st.info.get("kernel_name") or fusion.kernel_name)
            self.body.append("    EMIT(%d);" % st.last)
            self.body.append("    PROF(%d);" % st.last)
        self.layers.sort(key=lambda layer: layer["index"])

    def record(self, k: int, kernel: str | None = None, fused_into: int | None = None,
               offset: int | None = None) -> None:
        op = self.ops[k]
        out = op.outputs[0]
        if offset is None:
            offset = self.placed[self.alias.get(out.index, out.index)].offset
        self.layers.append({"index": k, "name": f"{k}:{op.opcode.lower()}:{_layer_name(out)}"[:63],
                            "op": op.opcode, "tensor": out.index, "offset": offset, "shape": list(out.shape),
                            "dtype": dtype_name(out), "scale": qscale(out), "zero_point": qzero(out),
                            "threshold": _is_threshold(out),
                            "macs": layer_macs(op), "kernel": kernel, "fused_into": fused_into,
                            "const_bytes": self.layer_bytes.get(k, 0), "weights8": k in self.weights8_used})

    def debug_ptr(self) -> str:
        return f"(arena + {self.placed[('debug', self.j)].offset})"

    def group_comment(self, st: Step, title: str) -> None:
        self.body.append("")
        self.body.append(f"    /* [{st.ops[0]}..{st.last}] fused in one pass: {title}. Every intermediate is")
        self.body.append("     * rounded to int8 exactly as TFLM does, but never stored; the debug dump")
        self.body.append("     * recomputes them one at a time into a spare buffer. */")
        for k in st.ops:
            op = self.ops[k]
            act = ACT_NAMES.get(op.options.get("fusedActivationFunction", 0), "NONE") if op.options else "NONE"
            ins = ", ".join(self.qdesc(t) for t in op.inputs if t is not None)
            self.body.append(f"    /* [{k}] {op.opcode} ({_layer_name(op.outputs[0])}): {ins} -> "
                             f"{self.qdesc(op.outputs[0])}" + (f", act {act}" if act != "NONE" else "") + " */")
        self.body.append("    {")

    def debug_taps(self, st: Step, call) -> None:
        """In the debug dump, each intermediate of the group in turn, then emitted."""
        self.body.append("        if (emit) {")
        for stage, k in enumerate(st.ops[:-1]):
            self.body.append(f"            {call(self.debug_ptr(), stage)};")
            self.body.append(f"            emit({k}, {self.debug_ptr()}, layers[{k}].size, ctx);")
        self.body.append("        }")

    def packed_const(self, t: Tensor, data: np.ndarray, name: str, kernel: str) -> str:
        flat = data.reshape(-1)
        self.weight_bytes += flat.nbytes
        self.layer_bytes[self.k] = self.layer_bytes.get(self.k, 0) + flat.nbytes
        rows = [", ".join(str(int(v)) for v in flat[i:i + 16]) for i in range(0, len(flat), 16)]
        self.data_lines.append(f"/* layer {self.k} ({_layer_name(self.ops[self.k].outputs[0])}): {list(t.shape)} "
                               f"int8 {self.qdesc(t)[len(str(list(t.shape))) + 1:]}, packed for {kernel} */")
        ctype = "int16_t" if flat.dtype == np.int16 else "int8_t"
        self.data_lines.append(f"const {ctype} {name}[{len(flat)}] __attribute__((aligned({ALIGN}))) = {{")
        self.data_lines += [f"    {r}," for r in rows]
        self.data_lines.append("};")
        self.decls.append(f"extern const {ctype} {name}[{len(flat)}];")
        return name

    # -----------------------------------------------------------------------------------------
    def render(self) -> dict[str, str]:
        digest = hashlib.sha256(self.model_bytes).digest()
        externs = "\n".join(self.decls)
        inp = self.input

        def info(t: Tensor, name: str, kind="MODEL_TENSOR_ACTIVATION") -> str:
            # Drop the batch dimension; a rank-1 tensor has none.
            dims = list(t.shape[1:] if len(t.shape) > 1 else t.shape) or [1]
            dims = dims[-4:]
            padded = dims + [0] * (4 - len(dims))
            # size in bytes (4 per element for the float32 output, whose scale and zero
            # point are 0: not quantized)
            return (f'{{"{name}", {kind}, {len(dims)}, {{{", ".join(str(d) for d in padded)}}}, '
                    f"{_nbytes(t)}u, {qscale(t)!r}f, {qzero(t)}}}")

        tensors = {t.index: t for op in self.ops for t in op.outputs}
        layer_rows = [info(tensors[l["tensor"]], l["name"],
                           "MODEL_TENSOR_THRESHOLD" if l["threshold"] else "MODEL_TENSOR_ACTIVATION")
                      for l in self.layers]
        in_ptr = self.ptr(inp)
        n_in, n_out = _nbytes(inp), sum(_nbytes(t) for t in self.outputs)
        if len(self.outputs) == 1:
            output_info = info(self.outputs[0], "output")
            copy_out = [f"    memcpy(out, {self.ptr(self.outputs[0])}, {n_out});"]
        else:
            # Several outputs: one frame of all their values, in the model's output order
            # (rank 1; scale and zero point 0: each output has its own, in model_info.json).
            values = sum(_numel(t.shape) for t in self.outputs)
            output_info = (f'{{"output", MODEL_TENSOR_ACTIVATION, 1, {{{values}, 0, 0, 0}}, {n_out}u, '
                           f"0.0f, 0}}")
            copy_out, at = [f"    /* the {len(self.outputs)} outputs one after another, in the model's order */"], 0
            for j, t in enumerate(self.outputs):
                copy_out.append(f"    memcpy(out + {at}, {self.ptr(t)}, {_nbytes(t)});   "
                                f"/* output {j}: {list(t.shape)} ({_layer_name(t)}) */")
                at += _nbytes(t)
        ops_summary = ", ".join(sorted({op.opcode for op in self.ops}))
        model_c = f"""/*
 * {self.name}: generated by drsn-edge firmware_gen from a {len(self.model_bytes)}-byte int8 .tflite.
 * Do not edit: regenerate with `drsn-edge firmware`.
 *
 * {len(self.ops)} operators ({ops_summary}); {self.weight_bytes} bytes of weights
 * ({self.optimize_note()});
 * one static arena of {self.arena} bytes, offsets planned from tensor lifetimes.
 * Every multiplier, shift, offset and clamp below was computed at generation time exactly as
 * TFLite Micro computes it in Prepare, so the outputs equal the TFLM reference bit for bit.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dk.h"
#include "conv1d.h"     /* 1-D convolution, specialised per layer by the compiler */
#include "ew_fused.h"   /* fused element-wise kernels, specialised per layer by the compiler */
#include "model_api.h"

#define ARENA_BYTES {self.arena}u
static int8_t arena[ARENA_BYTES] __attribute__((aligned({ALIGN})));

{externs}

static const uint8_t hash[MODEL_HASH_BYTES] = {{{", ".join(str(b) for b in digest)}}};
static const model_tensor_info input_info = {info(inp, "input")};
static const model_tensor_info output_info = {output_info};
static const model_tensor_info layers[{len(layer_rows)}] = {{
    {(","+chr(10)+"    ").join(layer_rows)}
}};
static const uint32_t layer_offset[{len(self.layers)}] = {{{", ".join(str(l["offset"]) for l in self.layers)}}};

const char *model_name(void) {{ return "{self.name}"; }}
const uint8_t *model_hash(void) {{ return hash; }}
const model_tensor_info *model_input(void) {{ return &input_info; }}
const model_tensor_info *model_output(void) {{ return &output_info; }}
uint32_t model_arena_bytes(void) {{ return ARENA_BYTES; }}
int model_init(void) {{ return MODEL_OK; }}
int model_layer_count(void) {{ return {len(self.layers)}; }}
const model_tensor_info *model_layer(int i)
{{
    return (i >= 0 && i < {len(self.layers)}) ? &layers[i] : NULL;
}}

/* The network, layer by layer. With `emit` set, each layer's output is reported as soon as
 * it is computed, while it is still intact in the arena. */
#ifdef DK_PROFILE
/* Profiling build (the benchmark's, -DDK_PROFILE): with model_profile_enabled set, the
 * board's work counter is read after every layer and model_profile[i] holds what layer i
 * took in the last inference (instructions under QEMU -icount, cycles on silicon), each
 * figure including one counter read; model_profile[{len(self.layers)}] is the input and
 * output copies. Layers computed inside a fused kernel show only that read. */
#include "board.h"
uint32_t model_profile[{len(self.layers) + 1}];
volatile int model_profile_enabled;
/* Each read is followed by a cycle mark (board_cycle_mark: the QEMU cycle plugin's per-layer
 * figures; the mark id is the layer), so a layer's figure includes one read and one mark. */
#define PROF_START() uint64_t prof_last = 0; \
    if (model_profile_enabled) {{ prof_last = board_counter_read(); board_cycle_mark(BOARD_MARK_BEGIN); }}
#define PROF_AT(i, mark) do {{ if (model_profile_enabled) {{ const uint64_t now_ = board_counter_read(); \
        board_cycle_mark(mark); model_profile[i] += (uint32_t)(now_ - prof_last); prof_last = now_; }} }} while (0)
#define PROF(i) PROF_AT(i, i)
#define PROF_CLEAR() do {{ if (model_profile_enabled) memset(model_profile, 0, sizeof model_profile); }} while (0)
/* Two profiling steps with nothing between them (cycle mark BOARD_MARK_PROBE): the second
 * stretch is what one PROF costs, which the benchmark subtracts from every layer's cycles. */
void model_profile_probe(void)
{{
    const int enabled = model_profile_enabled;
    model_profile_enabled = 1;
    PROF_START();
    PROF_AT({len(self.layers)}, BOARD_MARK_PROBE);
    PROF_AT({len(self.layers)}, BOARD_MARK_PROBE);
    model_profile[{len(self.layers)}] = 0;
    model_profile_enabled = enabled;
}}
#else
#define PROF_START() do {{ }} while (0)
#define PROF(i) do {{ }} while (0)
#define PROF_CLEAR() do {{ }} while (0)
#endif

static int run(const int8_t *in, int8_t *out, model_emit_fn emit, void *ctx)
{{
#define EMIT(i) do {{ if (emit) emit((i), arena + layer_offset[i], layers[i].size, ctx); }} while (0)
    PROF_CLEAR();
    PROF_START();
    memcpy({in_ptr}, in, {n_in});
    PROF({len(self.layers)});
{chr(10).join(self.body)}

{chr(10).join(copy_out)}
    PROF({len(self.layers)});
    return MODEL_OK;
#undef EMIT
}}

int model_invoke(const int8_t *in, int8_t *out) {{ return run(in, out, NULL, NULL); }}

int model_invoke_debug(const int8_t *in, int8_t *out, model_emit_fn emit, void *ctx)
{{
    return run(in, out, emit, ctx);
}}
"""
        data_c = (f"/* Weights of {self.name}, generated by drsn-edge firmware_gen. Do not edit. */\n"
                  "#include <stdint.h>\n\n" + "\n".join(self.data_lines) + "\n")
        # model.c refers to the arrays in model_data.c through its extern declarations
        return {"model.c": model_c, "model_data.c": data_c}


def output_frame(outputs: list[Tensor]) -> dict:
    """What the output frame holds: the one output, or all of them one after another (rank 1,
    no single quantization)."""
    if len(outputs) == 1:
        t = outputs[0]
        return {"shape": list(t.shape), "dtype": dtype_name(t), "scale": qscale(t), "zero_point": qzero(t)}
    return {"shape": [1, sum(_numel(t.shape) for t in outputs)], "dtype": dtype_name(outputs[0]),
            "scale": 0.0, "zero_point": 0}


def dtype_name(t: Tensor) -> str:
    return {"FLOAT32": "float32", "UINT8": "uint8"}.get(t.type, "int8")


def float_input_quantization(ops: list[Operator], inp: Tensor) -> dict:
    """For a float32 input, {"quantized_by": {scale, zero_point}}: the int8 quantization
    the first QUANTIZE gives it (what a float input means to the model); {} for int8."""
    if inp.type != "FLOAT32":
        return {}
    y = next(op.outputs[0] for op in ops if op.opcode == "QUANTIZE"
             and any(t is not None and t.index == inp.index for t in op.inputs))
    return {"quantized_by": {"scale": float(y.scale), "zero_point": int(y.zero_point)}}


def qscale(t: Tensor) -> float:
    """The per-tensor scale, 0.0 for a tensor that is not quantized (a float32 input or
    output)."""
    return float(t.scale) if len(t.scales) else 0.0


def qzero(t: Tensor) -> int:
    return t.zero_point if len(t.zero_points) else 0


def layer_macs(op: Operator) -> int:
    """Multiply-accumulates of one operator (its op unit's count: convolutions and fully
    connected layers; element-wise operators count 0)."""
    unit = REGISTRY.get(op.opcode)
    return int(unit.macs(op)) if unit is not None and unit.macs is not None else 0


SUPPORTED = set(REGISTRY)


def check(model_bytes: bytes, where: str = "the model") -> None:
    """Can the compiled runtime generate C for this model? Raises a one-line UserError naming
    the first operator it cannot take (index and op) and what to do instead; writes nothing.
    Runs the whole generation in memory, so limits found while emitting (a quantization
    TFLM would also refuse, a shape a kernel does not take) are caught here too."""
    ops = read_operators(model_bytes)
    tflm_hint = ("deploy it with the TFLM back end instead (--set firmware.backend=\"tflm\", "
                 "with TFLM_LIB and TFLM_INCLUDE)")
    for op in ops:
        if op.opcode not in SUPPORTED:
            raise UserError(f"{where}: op {op.index} {op.opcode} ({_layer_name(op.outputs[0])}) has no kernel "
                            f"in the compiled runtime (it has: {', '.join(sorted(SUPPORTED))}); {tflm_hint}")
        if len(op.outputs) != 1 and op.opcode not in MULTI_OUTPUT_OPS:
            raise UserError(f"{where}: op {op.index} {op.opcode} has {len(op.outputs)} outputs; the compiled "
                            f"runtime takes single-output ops; {tflm_hint}")
    em = None
    try:
        em = Emitter(model_bytes, "check")
        em.emit()
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    except (quant.QuantError, ValueError, KeyError, IndexError, TypeError) as exc:
        at = getattr(em, "k", None)
        op = ops[at] if at is not None and at < len(ops) else None
        what = f"op {op.index} {op.opcode} ({_layer_name(op.outputs[0])})" if op else "the model"
        raise UserError(f"{where}: {what} cannot be compiled ({type(exc).__name__}: {exc}); "
                        f"{tflm_hint}") from None


def _graph_outputs(model_bytes: bytes) -> list[int]:
    from firmware_gen.tflm_oracle import _model
    return [int(j) for j in _model(model_bytes).subgraphs[0].outputs]


def generate(model_bytes: bytes, out_dir: str | Path, name: str = "model", optimize: str = "speed",
             size_layers: frozenset[int] | None = None) -> dict:
    """Write model.c, model_data.c and model_info.json for this .tflite into out_dir.
    optimize: "speed" (the fast paths' weights widened to int16 at generation time) or "size"
    (kept int8 and widened in the loop); size_layers: layers to keep int8 in speed mode."""
    em = Emitter(model_bytes, name, optimize, size_layers)
    em.emit()
    files = em.render()
    out_dir = Path(out_dir)
    for fname, text in files.items():
        artifacts.write_text(out_dir / fname, text)
    info = {
        "name": name,
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "ops": [op.opcode for op in em.ops],
        "arena_bytes": em.arena,
        "scratch_bytes": em.scratch_bytes,
        "scratch_peak_bytes": max((p.size for key, p in em.placed.items()
                                   if isinstance(key, tuple) and key[0] == "scratch"), default=0),
        "steps": [{"kind": st.kind, "ops": st.ops, "inplace": st.info.get("inplace_of") is not None,
                   "streams_over_input": "streams_over" in st.info}
                  for st in em.steps],
        "weight_bytes": em.weight_bytes,
        "optimize": optimize,
        "weights8_layers": sorted(em.weights8_used),
        "input": {"shape": list(em.input.shape), "dtype": dtype_name(em.input), "scale": qscale(em.input),
                  "zero_point": qzero(em.input), **float_input_quantization(em.ops, em.input)},
        "output": output_frame(em.outputs),
        "outputs": [{"name": t.name, "shape": list(t.shape), "dtype": dtype_name(t), "scale": qscale(t),
                     "zero_point": qzero(t), "offset": sum(_nbytes(u) for u in em.outputs[:j])}
                    for j, t in enumerate(em.outputs)],
        "layers": em.layers,
        "sources": sorted(files),
    }
    artifacts.write_json(out_dir / "model_info.json", info)
    return info


def runtime_sources() -> list[Path]:
    return sorted((RUNTIME_DIR / "kernels").glob("*.c"))


def include_dirs() -> list[Path]:
    return [RUNTIME_DIR / "include", RUNTIME_DIR / "kernels", HARNESS_DIR]
