"""Generate plain C for one int8 .tflite model: the "compiled runtime".

The device gets no interpreter and no flatbuffer: every operator becomes a call into the
dk kernel library (firmware_gen/runtime) with its quantization arithmetic already done here
(firmware_gen/quant.py mirrors what TFLM computes in its Prepare step), and every activation
lives at a fixed offset of one static arena, planned from the tensors' lifetimes.

Choices made at generation time (plan_steps, plan_arena):
- kernels: Conv1D-shaped CONV_2D -> dk_conv1d_s8 on weights packed for its inner loop;
  the DRSN's soft threshold (+ residual ADD), its batch norms left as MUL + ADD, and
  ABS + MEAN -> one fused pass each; everything else -> the reference kernel of its op.
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
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drsn_edge import artifacts
from drsn_edge.errors import UserError
from firmware_gen import quant
from firmware_gen.tflm_oracle import Operator, Tensor, read_operators, model_inputs

HARNESS_DIR = Path(__file__).resolve().parent / "harness"
RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"

# Ops that only relabel the shape of their input: their output shares the input's memory.
ALIASES = {"RESHAPE", "EXPAND_DIMS", "SQUEEZE"}
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


def _numel(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


# The DRSN's per-channel thresholds: Keras layer "<unit>_tau" (the MUL alpha * mean|x|) or
# its reshape "<unit>_tau_t"; the converter appends "_<n>" to Keras layer names.
_THRESHOLD_LAYER = re.compile(r"_tau(_t)?(_\d+)?$")


def _is_threshold(tensor: Tensor) -> bool:
    return bool(_THRESHOLD_LAYER.search(_layer_name(tensor)))


def _layer_name(tensor: Tensor) -> str:
    """The Keras layer a tensor came from: TF names tensors like
    'drsn_cw_1/rsbu1_conv1/convolution;...' (first path component is the model)."""
    first = tensor.name.split(";")[0]
    parts = [p for p in first.split("/") if p]
    if len(parts) >= 2:
        return parts[1]
    return parts[0] if parts else f"tensor{tensor.index}"


# --- fusion: which kernel call computes which operators -------------------------------------

# Element-wise operators whose output may overwrite an input of the same shape once that
# input is read for the last time (each kernel reads element i before writing element i).
INPLACE_OPS = {"ADD", "SUB", "MUL", "MINIMUM", "MAXIMUM", "ABS", "RELU", "QUANTIZE", "LOGISTIC",
               "LEAKY_RELU", "RELU6", "TANH", "HARD_SWISH"}
# The fast element-wise arithmetic needs |x << left| < 2^30 (dk_acle.h); a MUL of two
# int8 operands (|product| <= 255^2 < 2^16) allows a left shift of at most 13.
MAX_MUL_LEFT_SHIFT = 13


@dataclass
class Step:
    """One kernel call of the inference: a single operator, or a fused group of consecutive
    operators whose intermediate tensors are never stored (the debug dump recomputes them
    into a `debug` buffer, one at a time)."""
    kind: str                     # "op", "alias", "shrink", "affine", "absmean", "conv1d"
    ops: list[int]                # operator indices, in order; the last one's output is stored
    reads: list[int] = field(default_factory=list)    # activation tensors read
    inplace: int | None = None    # the input the output may overwrite
    scratch: int = 0              # bytes of scratch memory during the call
    debug: int = 0                # bytes for one intermediate of the group (debug dump only)
    debug_with_output: bool = False   # the debug call writes the intermediate and the output together
    info: dict = field(default_factory=dict)

    @property
    def last(self) -> int:
        return self.ops[-1]


def _consumers(ops: list[Operator]) -> dict[int, list[int]]:
    users: dict[int, list[int]] = {}
    for k, op in enumerate(ops):
        for t in op.inputs:
            if t is not None and t.data is None:
                users.setdefault(t.index, []).append(k)
    return users


def _is_act(t) -> bool:
    return t is not None and t.data is None


def _per_channel(t, channels: int) -> bool:
    return t is not None and _numel(t.shape) == channels and (len(t.shape) == 0 or t.shape[-1] == channels)


def _positions_channels(shape) -> tuple[int, int] | None:
    """[1, L, C] or [1, 1, L, C] -> (L, C)."""
    dims = [int(d) for d in shape]
    if len(dims) < 2 or any(d != 1 for d in dims[:-2]):
        return None
    return dims[-2], dims[-1]


def _only_used_by(users, tensor: Tensor, k: int, output_index: int) -> bool:
    return tensor.index != output_index and users.get(tensor.index, []) == [k]


def _match_shrink(ops, k, users, output_index) -> Step | None:
    """ADD(r, tau) -> MINIMUM(., c) ; SUB(r, tau) ReLU ; ADD(s, m) [; ADD(y, shortcut)]."""
    if k + 3 >= len(ops):
        return None
    add, mn, sub, tot = ops[k:k + 4]
    if (add.opcode, mn.opcode, sub.opcode, tot.opcode) != ("ADD", "MINIMUM", "SUB", "ADD"):
        return None
    r, tau = add.inputs[:2]
    lc = _positions_channels(r.shape) if _is_act(r) else None
    if lc is None or not _is_act(tau) or not _per_channel(tau, lc[1]):
        return None
    if tuple(op.outputs[0].shape for op in (add, mn, sub, tot)) != (r.shape,) * 4:
        return None
    same = _same_memory(ops)
    if sub.inputs[0].index != r.index or same(sub.inputs[1].index) != same(tau.index):
        return None
    a = add.outputs[0]
    consts = [t for t in mn.inputs if t is not None and t.data is not None]
    if len(consts) != 1 or _numel(consts[0].shape) != 1 or a.index not in [t.index for t in mn.inputs]:
        return None
    if {t.index for t in tot.inputs} != {mn.outputs[0].index, sub.outputs[0].index}:
        return None
    for t, user in ((a, k + 1), (mn.outputs[0], k + 3), (sub.outputs[0], k + 3)):
        if not _only_used_by(users, t, user, output_index):
            return None
    step = Step("shrink", [k, k + 1, k + 2, k + 3], reads=[r.index, tau.index],
                info={"positions": lc[0], "channels": lc[1], "min": consts[0],
                      "sum_s_first": tot.inputs[0].index == sub.outputs[0].index})
    y = tot.outputs[0]
    if k + 4 < len(ops) and ops[k + 4].opcode == "ADD" and _only_used_by(users, y, k + 4, output_index):
        res = ops[k + 4]
        other = [t for t in res.inputs if t.index != y.index]
        if (len(other) == 1 and _is_act(other[0]) and tuple(other[0].shape) == tuple(r.shape)
                and tuple(res.outputs[0].shape) == tuple(r.shape)):
            step.ops.append(k + 4)
            step.reads.append(other[0].index)
            step.info["shortcut"] = other[0]
            step.info["res_y_first"] = res.inputs[0].index == y.index
    step.debug = _numel(r.shape)
    return step


def _same_memory(ops):
    """tensor -> the tensor whose bytes it is (through RESHAPE, EXPAND_DIMS, SQUEEZE)."""
    src = {op.outputs[0].index: op.inputs[0].index for op in ops if op.opcode in ALIASES and _is_act(op.inputs[0])}

    def root(i):
        while i in src:
            i = src[i]
        return i
    return root


def _match_affine(ops, k, users, output_index) -> Step | None:
    """MUL(x, scale[C]) -> ADD(., shift[C]) with constants: a batch normalisation."""
    if k + 1 >= len(ops) or (ops[k].opcode, ops[k + 1].opcode) != ("MUL", "ADD"):
        return None
    mul, add = ops[k], ops[k + 1]
    xs = [t for t in mul.inputs if _is_act(t)]
    if len(xs) != 1:
        return None
    x = xs[0]
    lc = _positions_channels(x.shape)
    if lc is None:
        return None
    scale = [t for t in mul.inputs if t.index != x.index][0]
    u = mul.outputs[0]
    if scale.data is None or not _per_channel(scale, lc[1]) or not _only_used_by(users, u, k + 1, output_index):
        return None
    shift = [t for t in add.inputs if t.index != u.index]
    if len(shift) != 1 or shift[0].data is None or not _per_channel(shift[0], lc[1]):
        return None
    if tuple(u.shape) != tuple(x.shape) or tuple(add.outputs[0].shape) != tuple(x.shape):
        return None
    q = quant.prepare_mul(mul.inputs[0].scale, mul.inputs[0].zero_point, mul.inputs[1].scale,
                          mul.inputs[1].zero_point, u.scale, u.zero_point)
    if q.output.shift > MAX_MUL_LEFT_SHIFT:
        return None
    return Step("affine", [k, k + 1], reads=[x.index], inplace=x.index, debug=_numel(x.shape),
                info={"positions": lc[0], "channels": lc[1], "x": x, "scale": scale, "shift": shift[0],
                      "mul_x_first": mul.inputs[0].index == x.index,
                      "add_u_first": add.inputs[0].index == u.index})


def _match_absmean(ops, k, users, output_index) -> Step | None:
    """ABS(x) -> MEAN over the positions of [1, L, C]."""
    if k + 1 >= len(ops) or (ops[k].opcode, ops[k + 1].opcode) != ("ABS", "MEAN"):
        return None
    ab, mean = ops[k], ops[k + 1]
    x, a = ab.inputs[0], ab.outputs[0]
    lc = _positions_channels(x.shape)
    if lc is None or mean.inputs[0].index != a.index or not _only_used_by(users, a, k + 1, output_index):
        return None
    axes = [int(v) for v in np.atleast_1d(mean.inputs[1].data)]
    try:
        outer, reduce, inner = quant.mean_plan(a.shape, axes)
    except quant.QuantError:
        return None
    if (outer, reduce, inner) != (1, lc[0], lc[1]):
        return None
    return Step("absmean", [k, k + 1], reads=[x.index], debug=_numel(x.shape), debug_with_output=True,
                info={"positions": lc[0], "channels": lc[1]})


def conv1d_geometry(op: Operator) -> dict | None:
    """The 1-D view of a CONV_2D that dk_conv1d_s8 runs, or None when it does not apply."""
    if op.opcode != "CONV_2D":
        return None
    x, w = op.inputs[0], op.inputs[1]
    o = op.options
    if len(x.shape) != 4 or x.shape[0] != 1 or x.shape[1] != 1 or w.shape[1] != 1:
        return None
    if w.shape[3] != x.shape[3] or o.get("dilationWFactor", 1) != 1 or o.get("strideH", 1) != 1:
        return None
    pad = "SAME" if o.get("padding", 0) == 0 else "VALID"
    out_w, pad_w = quant.conv_output_size(x.shape[2], w.shape[2], o["strideW"], 1, pad)
    if out_w != op.outputs[0].shape[2]:
        return None
    kernel, in_c = int(w.shape[2]), int(x.shape[3])
    taps = -(-(kernel * in_c) // 4) * 4
    block = conv1d_block(in_c, kernel, int(o["strideW"]))
    return {"in_w": int(x.shape[2]), "in_c": in_c, "out_w": int(out_w), "out_c": int(w.shape[0]),
            "kernel": kernel, "stride": int(o["strideW"]), "pad": int(pad_w), "taps": taps,
            "block": block, "scratch": conv1d_scratch_bytes(in_c, kernel, int(o["strideW"]), block)}


def plan_arena(ops, input_index: int, output_index: int, steps: list[Step]):
    """plan_memory, then shrink the widening block of any conv1d whose scratch sets the
    arena's size (fewer columns widened at once: a little more work, less memory), as long
    as that makes the arena smaller."""
    plan = plan_memory(ops, input_index, output_index, steps)
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
        trial = plan_memory(ops, input_index, output_index, steps)
        if trial[2] >= arena:      # no gain: keep the faster, wider blocks
            for j, block in undo:
                _set_block(steps[j], block)
            return plan_memory(ops, input_index, output_index, steps)
        plan = trial


def _set_block(step: Step, block: int) -> None:
    geo = step.info
    geo["block"] = block
    geo["scratch"] = step.scratch = conv1d_scratch_bytes(geo["in_c"], geo["kernel"], geo["stride"], block)


# Must match DK_CONV1D_SLACK in runtime/kernels/conv1d.h (tests/test_kernels_fast.py checks
# dk_conv1d_scratch_bytes against conv1d_scratch_bytes).
CONV1D_SLACK = 8
# Output columns widened at once: the largest of these whose scratch stays under this many
# bytes to begin with; plan_arena narrows a block further when its scratch sets the arena size.
CONV1D_BLOCKS = (16, 8, 4)
CONV1D_SCRATCH_SOFT_LIMIT = 1024


def conv1d_scratch_bytes(in_c: int, kernel: int, stride: int, block: int) -> int:
    return 2 * (((block - 1) * stride + kernel) * in_c + CONV1D_SLACK)


def conv1d_block(in_c: int, kernel: int, stride: int) -> int:
    for block in CONV1D_BLOCKS:
        if conv1d_scratch_bytes(in_c, kernel, stride, block) <= CONV1D_SCRATCH_SOFT_LIMIT:
            return block
    return CONV1D_BLOCKS[-1]


def conv1d_small_acc(op: Operator, q: quant.ChannelQuant) -> bool:
    """True when no accumulator of this convolution, shifted left by its channel's shift, can
    reach 2^30 in magnitude for any int8 input (so dk_fast_mbqm is exact)."""
    bias = op.inputs[2].data if len(op.inputs) > 2 and op.inputs[2] is not None else None
    return small_accumulators(op.inputs[1].data, bias, q)


def small_accumulators(weights: np.ndarray, bias, q: quant.ChannelQuant) -> bool:
    """The bound behind conv1d_small_acc: per output channel
    sum|w| * max|x + input_offset| + |bias|, shifted left by the channel's shift, < 2^30."""
    w = np.asarray(weights, dtype=np.int64).reshape(np.shape(weights)[0], -1)
    b = np.zeros(w.shape[0], np.int64) if bias is None else np.abs(np.asarray(bias, np.int64))
    x_max = 128 + abs(q.input_offset)   # max |x + input_offset| over int8 x
    bound = np.abs(w).sum(axis=1) * x_max + b
    left = np.maximum(np.asarray(q.shifts, dtype=np.int64), 0)
    return bool(np.all((bound << left) < 2**30))


def conv1d_wide(in_c: int, stride: int) -> bool:
    """The int16 layout of dk_conv1d_s8_fast applies (conv1d.h): every output column's taps
    start on a group of 4 of the image."""
    return (in_c * stride) % 4 == 0


def pack_conv1d(w: np.ndarray, taps: int, wide: bool = False) -> np.ndarray:
    """Weights [out_c, 1, K, in_c] in dk_conv1d_s8's layout: channel pairs, each pair's taps
    interleaved four at a time, every group of four stored in the order 0, 2, 1, 3; int8, or
    int16 (sign-extended at generation time) for dk_conv1d_s8_fast's records."""
    out_c = w.shape[0]
    flat = np.zeros((out_c + out_c % 2, taps), dtype=np.int16 if wide else np.int8)
    flat[:out_c, :w[0].size] = w.reshape(out_c, -1)
    groups = flat.reshape(-1, 2, taps // 4, 4)[..., [0, 2, 1, 3]]      # [pair, ch, group, 4]
    return np.ascontiguousarray(groups.transpose(0, 2, 1, 3)).reshape(-1)


def conv1d_fast(in_c: int, stride: int, small_acc: bool, q: quant.ChannelQuant) -> bool:
    """dk_conv1d_s8_fast applies (conv1d.h): the wide layout, small accumulators, and
    every channel's right shift e = -shift in [1, 22] (left shift 1, folded into the weights;
    the zero point folded into the rounding constant)."""
    shifts = np.asarray(q.shifts, dtype=np.int64)
    return (conv1d_wide(in_c, stride) and bool(small_acc)
            and bool(np.all(shifts <= -1)) and bool(np.all(shifts >= -22)))


def pack_conv1d_fast(w: np.ndarray, bias, q: quant.ChannelQuant, taps: int) -> np.ndarray:
    """One record per channel pair for dk_conv1d_s8_fast, as int16 (conv1d.h): the bias with
    input_offset * sum(w) folded in (the kernel's image holds the raw input), times 2 (int32
    pair); the wide-layout weights times 2; then per channel multiplier, rounding
    2^(e-1) + (zp << e) and e (int32 each)."""
    out_c = w.shape[0]
    pairs = (out_c + 1) // 2
    weights = (pack_conv1d(w, taps, wide=True).astype(np.int32) * 2).astype(np.int16).reshape(pairs, 2 * taps)
    n = out_c + out_c % 2
    def per_channel(values, pad):
        v = np.broadcast_to(np.asarray(values, dtype=np.int64), (out_c,)) if np.size(values) == 1 \
            else np.asarray(values, dtype=np.int64)
        return np.concatenate([v, np.full(n - out_c, pad, np.int64)])
    wsum = np.asarray(w, np.int64).reshape(out_c, -1).sum(axis=1)
    b = (per_channel(0 if bias is None else np.asarray(bias, np.int64), 0)
         + per_channel(wsum * int(q.input_offset), 0)) * 2
    m = per_channel(q.multipliers, 0)
    e = -per_channel(q.shifts, -1)
    rnd = (1 << (e - 1)) + (int(q.output_offset) << e)
    def words(*cols):
        v = np.stack(cols, axis=1).reshape(pairs, -1)
        v = ((v + 2**31) % 2**32 - 2**31).astype("<i4")
        return v.view("<i2").astype(np.int16)
    rec = np.concatenate([words(b), weights, words(m, rnd, e)], axis=1)
    return np.ascontiguousarray(rec).reshape(-1)


def plan_steps(ops: list[Operator], output_index: int) -> list[Step]:
    """Group the operators into kernel calls: fused patterns first, one call per operator
    otherwise. Only consecutive operators whose intermediates nobody else reads are fused."""
    users = _consumers(ops)
    steps: list[Step] = []
    k = 0
    while k < len(ops):
        op = ops[k]
        step = (_match_shrink(ops, k, users, output_index) or _match_affine(ops, k, users, output_index)
                or _match_absmean(ops, k, users, output_index))
        if step is None:
            reads = [t.index for t in op.inputs if _is_act(t)]
            if op.opcode in ALIASES:
                step = Step("alias", [k], reads=reads[:1])
            else:
                step = Step("op", [k], reads=reads)
                geo = conv1d_geometry(op)
                if geo is not None:
                    step.kind, step.scratch, step.info = "conv1d", geo["scratch"], geo
                out = op.outputs[0]
                if op.opcode in INPLACE_OPS:
                    same = [i for i in reads if _numel(_shape_of(ops, i)) == _numel(out.shape)]
                    step.inplace = same[0] if same else None
        elif step.kind == "shrink":
            step.inplace = step.reads[0]
        steps.append(step)
        k = step.last + 1
    return steps


def _shape_of(ops, index):
    return model_tensor_shape(ops, index)


# --- memory plan ------------------------------------------------------------------------------

def plan_memory(ops: list[Operator], input_index: int, output_index: int,
                steps: list[Step] | None = None) -> tuple[dict, dict[int, int], int]:
    """Place every activation tensor, scratch and debug buffer in one arena.

    Time runs in half steps: step j reads its inputs and writes its output at 2j + 1, and a
    debug buffer lives at 2j (between the previous step and this one), so it may share bytes
    with this step's output but never with its inputs. A step's output takes its in-place
    input's bytes when that input is read for the last time by the step. Placement is greedy
    first-fit by decreasing size: two buffers share bytes only when their lifetimes do not
    overlap. Returns placements (tensor index, or ("scratch", j) / ("debug", j)), the alias
    map (tensor -> the tensor whose bytes it uses) and the arena size."""
    if steps is None:
        steps = plan_steps(ops, output_index)
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

    life: dict = {input_index: [0, 0]}
    sizes: dict = {input_index: _numel(model_tensor_shape(ops, input_index))}
    for j, st in enumerate(steps):
        now = 2 * j + 1
        for t in st.reads:
            r = root(t)
            life.setdefault(r, [now, now])[1] = max(life[r][1], now)
        out = ops[st.last].outputs[0]
        if st.kind == "alias":
            continue
        src = st.inplace
        if (src is not None and out.index != output_index and root(output_index) != root(src)
                and not read_later(src, j) and sizes.get(root(src)) == _numel(out.shape)):
            alias[out.index] = root(src)
            st.info["inplace_of"] = root(src)
            continue
        life[out.index] = [now, now]
        sizes[out.index] = _numel(out.shape)
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
    life[root(output_index)][1] = 2 * len(steps) + 1

    placed: dict = {}
    for t in sorted(sizes, key=lambda i: (-sizes[i], life[i][0], str(i))):
        first, last = life[t]
        size = -(-sizes[t] // ALIGN) * ALIGN
        busy = sorted((p.offset, p.offset + p.size) for p in placed.values()
                      if not (p.last < first or last < p.first))
        offset = 0
        for lo, hi in busy:
            if offset + size <= lo:
                break
            offset = max(offset, hi)
        placed[t] = Placement(offset, size, first, last)
    arena = max((p.offset + p.size for p in placed.values()), default=0)
    return placed, {i: root(i) for i in list(alias)}, arena


def model_tensor_shape(ops, index):
    for op in ops:
        for t in list(op.inputs) + op.outputs:
            if t is not None and t.index == index:
                return t.shape
    raise KeyError(index)


# --- C emission -------------------------------------------------------------------------------

class Emitter:
    def __init__(self, model_bytes: bytes, name: str):
        self.model_bytes = model_bytes
        self.name = name
        self.ops = read_operators(model_bytes)
        inputs = model_inputs(model_bytes)
        if len(inputs) != 1:
            raise UserError(f"model has {len(inputs)} inputs; the compiled runtime supports one")
        self.input = inputs[0]
        self.output = self.ops[-1].outputs[0]
        self.data_lines: list[str] = []
        self.decls: list[str] = []
        self.body: list[str] = []
        self.layers: list[dict] = []
        self.const_names: dict[int, str] = {}
        self.weight_bytes = 0
        for t in [self.input, self.output]:
            if t.type != "INT8":
                raise UserError(f"model {t.name!r} is {t.type}, not int8; convert with int8 input "
                                f"and output (make quantize)")
        self.steps = plan_steps(self.ops, self.output.index)
        self.placed, self.alias, self.arena = plan_arena(self.ops, self.input.index, self.output.index,
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
    def emit(self) -> None:
        for j, st in enumerate(self.steps):
            self.j = j
            if st.kind in ("op", "alias", "conv1d"):
                k = st.last
                op = self.ops[k]
                handler = getattr(self, f"op_{op.opcode.lower()}", None)
                if st.kind == "conv1d":
                    handler = self.conv1d
                if handler is None:
                    raise UserError(f"operator {op.opcode} (layer {_layer_name(op.outputs[0])}) has no kernel "
                                    f"in the compiled runtime; supported: {', '.join(sorted(SUPPORTED))}")
                self.k = k
                handler(k, op)
                self.body.append("    }")
                self.record(k, kernel=st.info.get("kernel_name") or _KERNEL_NAMES.get(st.kind) or
                            f"dk_{op.opcode.lower()}_s8")
            else:
                self.k = st.last
                getattr(self, f"group_{st.kind}")(st)
                self.body.append("    }")
                for k in st.ops[:-1]:
                    self.record(k, fused_into=st.last, offset=self.placed[("debug", j)].offset)
                self.record(st.last, kernel=_KERNEL_NAMES[st.kind])
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
                            "scale": float(out.scale), "zero_point": out.zero_point,
                            "threshold": _is_threshold(out),
                            "macs": layer_macs(op), "kernel": kernel, "fused_into": fused_into})

    def debug_ptr(self) -> str:
        return f"(arena + {self.placed[('debug', self.j)].offset})"

    def _add_struct(self, q) -> str:
        return (f"{{{q.input1_offset}, {q.input2_offset}, {q.output_offset}, {q.left_shift}, "
                f"{{{q.input1.multiplier}, {q.input1.shift}}}, {{{q.input2.multiplier}, {q.input2.shift}}}, "
                f"{{{q.output.multiplier}, {q.output.shift}}}, {{{q.activation.min}, {q.activation.max}}}}}")

    @staticmethod
    def _add_params(op):
        a, b = op.inputs[:2]
        y = op.outputs[0]
        act = ACT_NAMES[op.options.get("fusedActivationFunction", 0)]
        return quant.prepare_add(a.scale, a.zero_point, b.scale, b.zero_point, y.scale, y.zero_point, act)

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

    def group_shrink(self, st: Step) -> None:
        add, mn, sub, tot = (self.ops[k] for k in st.ops[:4])
        r, tau = add.inputs[:2]
        info = st.info
        self.group_comment(st, "soft threshold" + (" + residual add" if "shortcut" in info else ""))
        p = f"L{st.last}"
        mn_out = mn.outputs[0]
        quant.check_minmax(mn.inputs[0].scale, mn.inputs[0].zero_point, mn.inputs[1].scale,
                           mn.inputs[1].zero_point, mn_out.scale, mn_out.zero_point)
        min_value = int(np.asarray(info["min"].data).reshape(-1)[0])
        res = self._add_struct(self._add_params(self.ops[st.ops[4]])) if "shortcut" in info else \
            "{0, 0, 0, 0, {0, 0}, {0, 0}, {0, 0}, {-128, 127}}"
        self.static("dk_shrink_params", f"{p}_p",
                    f"{{\n            {self._add_struct(self._add_params(add))},\n"
                    f"            {self._add_struct(self._add_params(sub))},\n"
                    f"            {self._add_struct(self._add_params(tot))},\n"
                    f"            {res},\n"
                    f"            {min_value}, {int(info['sum_s_first'])}, {int(info.get('res_y_first', 1))}}}")
        sc = self.ptr(info["shortcut"]) if "shortcut" in info else "NULL"
        L, C = info["positions"], info["channels"]
        last_stage = 4 if "shortcut" in info else 3

        def call(out, stage):
            return f"dk_shrink_s8(&{p}_p, {L}, {C}, {self.ptr(r)}, {self.ptr(tau)}, {sc}, {out}, {stage})"
        self.debug_taps(st, call)
        self.body.append(f"        {call(self.ptr(self.ops[st.last].outputs[0]), last_stage)};".replace(
            "dk_shrink_s8(", "dk_shrink_s8_inline("))

    def group_affine(self, st: Step) -> None:
        mul, add = (self.ops[k] for k in st.ops)
        info = st.info
        self.group_comment(st, "per-channel MUL + ADD of constants (batch normalisation)")
        p = f"L{st.last}"
        a, b = mul.inputs[:2]
        u = mul.outputs[0]
        qm = quant.prepare_mul(a.scale, a.zero_point, b.scale, b.zero_point, u.scale, u.zero_point,
                               ACT_NAMES[mul.options.get("fusedActivationFunction", 0)])
        mul_struct = (f"{{{qm.input1_offset}, {qm.input2_offset}, {qm.output_offset}, "
                      f"{{{qm.output.multiplier}, {qm.output.shift}}}, {{{qm.activation.min}, {qm.activation.max}}}}}")
        self.k = st.ops[0]
        scale = self.ptr(info["scale"], "scale")
        self.k = st.last
        shift = self.ptr(info["shift"], "shift")
        self.static("dk_channel_affine_params", f"{p}_p",
                    f"{{{mul_struct},\n            {self._add_struct(self._add_params(add))},\n"
                    f"            {int(info['mul_x_first'])}, {int(info['add_u_first'])}}}")
        L, C = info["positions"], info["channels"]

        def call(out, stage):
            return (f"dk_channel_affine_s8(&{p}_p, {L}, {C}, {self.ptr(info['x'])}, {scale}, {shift}, "
                    f"{out}, {stage})")
        self.debug_taps(st, call)
        self.body.append(f"        {call(self.ptr(add.outputs[0]), 1)};".replace(
            "dk_channel_affine_s8(", "dk_channel_affine_s8_inline("))

    def group_absmean(self, st: Step) -> None:
        ab, mean = (self.ops[k] for k in st.ops)
        x, a, y = ab.inputs[0], ab.outputs[0], mean.outputs[0]
        info = st.info
        self.group_comment(st, "|x| and its mean over positions in one pass")
        p = f"L{st.last}"
        qa = quant.prepare_abs(x.scale, x.zero_point, a.scale, a.zero_point)
        qm = quant.prepare_mean(a.scale, a.zero_point, y.scale, y.zero_point, info["positions"])
        self.array("int8_t", f"{p}_abs", quant.abs_table(qa))
        self.static("dk_mean_params", f"{p}_mean", f"{{{qm.input_zero_point}, {qm.output_zero_point}, "
                                                   f"{qm.num_elements}, {{{qm.output.multiplier}, {qm.output.shift}}}}}")
        L, C = info["positions"], info["channels"]
        call = (f"dk_abs_mean_s8({p}_abs, &{p}_mean, {L}, {C}, {self.ptr(x)}, %s, {self.ptr(y)})")
        self.body.append("        if (emit) {")
        self.body.append(f"            {call % self.debug_ptr()};")
        self.body.append(f"            emit({st.ops[0]}, {self.debug_ptr()}, layers[{st.ops[0]}].size, ctx);")
        self.body.append("        } else {")
        self.body.append(f"            {call % 'NULL'};")
        self.body.append("        }")

    def conv1d(self, k, op):
        x, w, b = op.inputs[0], op.inputs[1], op.inputs[2] if len(op.inputs) > 2 else None
        y = op.outputs[0]
        geo = self.steps[self.j].info
        act = ACT_NAMES[op.options.get("fusedActivationFunction", 0)]
        q = quant.prepare_conv(x.scale, x.zero_point, w.scales, y.scale, y.zero_point, act,
                               num_channels=w.shape[0])
        fast = conv1d_fast(geo["in_c"], geo["stride"], conv1d_small_acc(op, q), q)
        layout = ("dk_conv1d_s8_fast: one int16 record (bias, weights, requantization) per "
                  "channel pair" if fast else
                  "dk_conv1d_s8: int8 weights in channel pairs")
        self.comment(k, op, f"1-D: kernel {geo['kernel']} stride {geo['stride']} pad {geo['pad']} act {act}; "
                            f"{geo['taps']} taps per channel, {layout}")
        p = f"L{k}"
        self.static("dk_conv1d_params", f"{p}_p",
                    f"{{{q.input_offset}, {q.output_offset}, {geo['in_w']}, {geo['in_c']}, {geo['out_w']}, "
                    f"{geo['out_c']}, {geo['kernel']}, {geo['stride']}, {geo['pad']}, {geo['taps']}, "
                    f"{{{q.activation.min}, {q.activation.max}}}, {int(conv1d_small_acc(op, q))}, "
                    f"{geo['block']}}}")
        scratch = f"(int16_t *)(arena + {self.placed[('scratch', self.j)].offset})"
        if fast:
            packed = self.packed_const(w, pack_conv1d_fast(w.data, None if b is None else b.data, q,
                                                           geo["taps"]), f"{p}_packed",
                                       "dk_conv1d_s8_fast")
            self.body.append(f"        dk_conv1d_s8_fast(&{p}_p, {self.ptr(x)}, {packed}, {scratch}, "
                             f"{self.ptr(y)});")
            return
        self.array("int32_t", f"{p}_mult", q.multipliers)
        self.array("int32_t", f"{p}_shift", q.shifts)
        self.static("dk_channel_requant", f"{p}_q", f"{{{p}_mult, {p}_shift, {int(q.per_channel)}}}")
        packed = self.packed_const(w, pack_conv1d(w.data, geo["taps"]), f"{p}_filter_packed",
                                   "dk_conv1d_s8")
        bias = self.ptr(b, "bias") if b is not None else "NULL"
        self.body.append(f"        dk_conv1d_s8_inline(&{p}_p, &{p}_q, {self.ptr(x)}, {packed}, {bias}, {scratch}, "
                         f"{self.ptr(y)});")

    def packed_const(self, t: Tensor, data: np.ndarray, name: str, kernel: str) -> str:
        flat = data.reshape(-1)
        self.weight_bytes += flat.nbytes
        rows = [", ".join(str(int(v)) for v in flat[i:i + 16]) for i in range(0, len(flat), 16)]
        self.data_lines.append(f"/* layer {self.k} ({_layer_name(self.ops[self.k].outputs[0])}): {list(t.shape)} "
                               f"int8 {self.qdesc(t)[len(str(list(t.shape))) + 1:]}, packed for {kernel} */")
        ctype = "int16_t" if flat.dtype == np.int16 else "int8_t"
        self.data_lines.append(f"const {ctype} {name}[{len(flat)}] __attribute__((aligned({ALIGN}))) = {{")
        self.data_lines += [f"    {r}," for r in rows]
        self.data_lines.append("};")
        self.decls.append(f"extern const {ctype} {name}[{len(flat)}];")
        return name

    def _conv_like(self, k, op, depthwise: bool):
        x, w, b = op.inputs[0], op.inputs[1], op.inputs[2] if len(op.inputs) > 2 else None
        y = op.outputs[0]
        o = op.options
        pad = "SAME" if o.get("padding", 0) == 0 else "VALID"
        _, ph = quant.conv_output_size(x.shape[1], w.shape[1], o["strideH"], o["dilationHFactor"], pad)
        _, pw = quant.conv_output_size(x.shape[2], w.shape[2], o["strideW"], o["dilationWFactor"], pad)
        act = ACT_NAMES[o.get("fusedActivationFunction", 0)]
        channels = w.shape[3] if depthwise else w.shape[0]   # filter is [1,kh,kw,out] or [out,kh,kw,in]
        q = quant.prepare_conv(x.scale, x.zero_point, w.scales, y.scale, y.zero_point, act, num_channels=channels)
        self.comment(k, op, f"stride {o['strideH']}x{o['strideW']} pad {pad} ({ph},{pw}) act {act}")
        p = f"L{k}"
        self.array("int32_t", f"{p}_mult", q.multipliers)
        self.array("int32_t", f"{p}_shift", q.shifts)
        self.static("dk_channel_requant", f"{p}_q", f"{{{p}_mult, {p}_shift, {int(q.per_channel)}}}")
        self.static("dk_conv_params", f"{p}_p",
                    f"{{{q.input_offset}, {q.output_offset}, {o['strideH']}, {o['strideW']}, {ph}, {pw}, "
                    f"{o['dilationHFactor']}, {o['dilationWFactor']}, {{{q.activation.min}, {q.activation.max}}}}}")
        for nm, shp in (("in", x.shape), ("w", w.shape), ("out", y.shape)):
            self.static("dk_dims", f"{p}_{nm}", "{%d, %d, %d, %d}" % tuple(shp))
        bias = self.ptr(b, "bias") if b is not None else "NULL"
        call = (f"dk_depthwise_conv_s8(&{p}_p, &{p}_q, {o['depthMultiplier']}, " if depthwise
                else f"dk_conv_s8(&{p}_p, &{p}_q, ")
        self.body.append(f"        {call}&{p}_in, {self.ptr(x)}, &{p}_w, {self.ptr(w, 'filter')}, {bias}, "
                         f"&{p}_out, {self.ptr(y)});")

    def op_conv_2d(self, k, op):
        self._conv_like(k, op, depthwise=False)

    def op_depthwise_conv_2d(self, k, op):
        self._conv_like(k, op, depthwise=True)

    def op_fully_connected(self, k, op):
        x, w = op.inputs[0], op.inputs[1]
        b = op.inputs[2] if len(op.inputs) > 2 else None
        y = op.outputs[0]
        act = ACT_NAMES[op.options.get("fusedActivationFunction", 0)]
        q = quant.prepare_fully_connected(x.scale, x.zero_point, w.scales, y.scale, y.zero_point, act)
        depth = w.shape[1]
        batches = _numel(x.shape) // depth
        self.comment(k, op, f"act {act}")
        p = f"L{k}"
        self.array("int32_t", f"{p}_mult", q.multipliers)
        self.array("int32_t", f"{p}_shift", q.shifts)
        self.static("dk_channel_requant", f"{p}_q", f"{{{p}_mult, {p}_shift, {int(q.per_channel)}}}")
        self.static("dk_fc_params", f"{p}_p", f"{{{q.input_offset}, {q.filter_offset}, {q.output_offset}, "
                                              f"{{{q.activation.min}, {q.activation.max}}}}}")
        bias = self.ptr(b, "bias") if b is not None else "NULL"
        self.body.append(f"        dk_fully_connected_s8(&{p}_p, &{p}_q, {batches}, {depth}, {w.shape[0]}, "
                         f"{self.ptr(x)}, {self.ptr(w, 'weights')}, {bias}, {self.ptr(y)});")

    def _broadcast(self, p, a, b):
        plan = quant.broadcast_plan(a.shape, b.shape)
        self.static("dk_broadcast", f"{p}_bc",
                    "{{%s}, {%s}, {%s}}" % tuple(", ".join(str(v) for v in arr)
                                                for arr in (plan.out_dims, plan.in1_strides, plan.in2_strides)))
        return plan

    def _add_like(self, k, op, fn):
        a, b = op.inputs
        y = op.outputs[0]
        act = ACT_NAMES[op.options.get("fusedActivationFunction", 0)]
        q = quant.prepare_add(a.scale, a.zero_point, b.scale, b.zero_point, y.scale, y.zero_point, act)
        self.comment(k, op, f"act {act}")
        p = f"L{k}"
        if tuple(a.shape) == tuple(b.shape) and a.data is None and b.data is None:
            self.static("dk_add_params", f"{p}_p", self._add_struct(q))
            self.body.append(f"        dk_add_same_s8_inline(&{p}_p, {_numel(a.shape)}, {self.ptr(a)}, {self.ptr(b)}, "
                             f"{self.ptr(y)}, {int(fn == 'dk_sub_s8')});")
            self.steps[self.j].info["kernel_name"] = "dk_add_same_s8"
            return
        self._broadcast(p, a, b)
        self.static("dk_add_params", f"{p}_p",
                    f"{{{q.input1_offset}, {q.input2_offset}, {q.output_offset}, {q.left_shift}, "
                    f"{{{q.input1.multiplier}, {q.input1.shift}}}, {{{q.input2.multiplier}, {q.input2.shift}}}, "
                    f"{{{q.output.multiplier}, {q.output.shift}}}, {{{q.activation.min}, {q.activation.max}}}}}")
        self.body.append(f"        {fn}(&{p}_p, &{p}_bc, {self.ptr(a)}, {self.ptr(b)}, {self.ptr(y)});")

    def op_add(self, k, op):
        self._add_like(k, op, "dk_add_s8")

    def op_sub(self, k, op):
        self._add_like(k, op, "dk_sub_s8")

    def op_mul(self, k, op):
        a, b = op.inputs
        y = op.outputs[0]
        act = ACT_NAMES[op.options.get("fusedActivationFunction", 0)]
        q = quant.prepare_mul(a.scale, a.zero_point, b.scale, b.zero_point, y.scale, y.zero_point, act)
        self.comment(k, op, f"act {act}")
        p = f"L{k}"
        self._broadcast(p, a, b)
        self.static("dk_mul_params", f"{p}_p",
                    f"{{{q.input1_offset}, {q.input2_offset}, {q.output_offset}, "
                    f"{{{q.output.multiplier}, {q.output.shift}}}, {{{q.activation.min}, {q.activation.max}}}}}")
        self.body.append(f"        dk_mul_s8(&{p}_p, &{p}_bc, {self.ptr(a)}, {self.ptr(b)}, {self.ptr(y)});")

    def _minmax(self, k, op, fn):
        a, b = op.inputs
        y = op.outputs[0]
        quant.check_minmax(a.scale, a.zero_point, b.scale, b.zero_point, y.scale, y.zero_point)
        self.comment(k, op, "inputs and output share one scale: raw int8 comparison")
        p = f"L{k}"
        self._broadcast(p, a, b)
        self.body.append(f"        {fn}(&{p}_bc, {self.ptr(a)}, {self.ptr(b)}, {self.ptr(y)});")

    def op_minimum(self, k, op):
        self._minmax(k, op, "dk_minimum_s8")

    def op_maximum(self, k, op):
        self._minmax(k, op, "dk_maximum_s8")

    def op_abs(self, k, op):
        x, y = op.inputs[0], op.outputs[0]
        q = quant.prepare_abs(x.scale, x.zero_point, y.scale, y.zero_point)
        self.comment(k, op)
        p = f"L{k}"
        self.static("dk_abs_params", f"{p}_p", f"{{{q.input_zero_point}, {q.output_zero_point}, "
                                               f"{int(q.needs_rescale)}, {{{q.output.multiplier}, {q.output.shift}}}}}")
        self.body.append(f"        dk_abs_s8(&{p}_p, {self.ptr(x)}, {self.ptr(y)}, {_numel(x.shape)});")

    def op_relu(self, k, op):
        x, y = op.inputs[0], op.outputs[0]
        q = quant.prepare_relu(x.scale, x.zero_point, y.scale, y.zero_point)
        self.comment(k, op)
        p = f"L{k}"
        self.static("dk_relu_params", f"{p}_p", f"{{{q.input_zero_point}, {q.output_zero_point}, "
                                                f"{{{q.output.multiplier}, {q.output.shift}}}, "
                                                f"{{{q.activation.min}, {q.activation.max}}}}}")
        self.body.append(f"        dk_relu_s8(&{p}_p, {self.ptr(x)}, {self.ptr(y)}, {_numel(x.shape)});")

    def op_quantize(self, k, op):
        x, y = op.inputs[0], op.outputs[0]
        if x.type != "INT8" or y.type != "INT8":
            raise UserError(f"QUANTIZE from {x.type} to {y.type} (layer {_layer_name(y)}): only int8->int8 "
                            f"requantization runs in the compiled runtime; re-run make quantize")
        q = quant.prepare_requantize(x.scale, x.zero_point, y.scale, y.zero_point)
        self.comment(k, op)
        p = f"L{k}"
        self.static("dk_requantize_params", f"{p}_p", f"{{{q.input_zero_point}, {q.output_zero_point}, "
                                                      f"{{{q.output.multiplier}, {q.output.shift}}}}}")
        self.body.append(f"        dk_requantize_s8(&{p}_p, {self.ptr(x)}, {self.ptr(y)}, {_numel(x.shape)});")

    def op_logistic(self, k, op):
        x, y = op.inputs[0], op.outputs[0]
        q = quant.prepare_logistic(x.scale, x.zero_point, y.scale, y.zero_point)
        self.comment(k, op, "output fixed at scale 1/256, zero point -128")
        p = f"L{k}"
        self.static("dk_logistic_params", f"{p}_p", f"{{{q.input_zero_point}, {q.input_range_radius}, "
                                                    f"{q.input_multiplier}, {q.input_left_shift}}}")
        self.body.append(f"        dk_logistic_s8(&{p}_p, {self.ptr(x)}, {self.ptr(y)}, {_numel(x.shape)});")

    def op_tanh(self, k, op):
        x, y = op.inputs[0], op.outputs[0]
        q = quant.prepare_tanh(x.scale, x.zero_point, y.scale, y.zero_point)
        self.comment(k, op, "output fixed at scale 1/128, zero point 0")
        p = f"L{k}"
        self.static("dk_logistic_params", f"{p}_p", f"{{{q.input_zero_point}, {q.input_range_radius}, "
                                                    f"{q.input_multiplier}, {q.input_left_shift}}}")
        self.body.append(f"        dk_tanh_s8(&{p}_p, {self.ptr(x)}, {self.ptr(y)}, {_numel(x.shape)});")

    def op_softmax(self, k, op):
        x, y = op.inputs[0], op.outputs[0]
        q = quant.prepare_softmax(x.scale, op.options.get("beta", 1.0), y.scale, y.zero_point)
        depth = x.shape[-1]
        self.comment(k, op, "output fixed at scale 1/256, zero point -128")
        p = f"L{k}"
        self.static("dk_softmax_params", f"{p}_p", f"{{{q.input_multiplier}, {q.input_left_shift}, {q.diff_min}}}")
        self.body.append(f"        dk_softmax_s8(&{p}_p, {_numel(x.shape) // depth}, {depth}, {self.ptr(x)}, {self.ptr(y)});")

    def op_mean(self, k, op):
        x, axes_t = op.inputs
        y = op.outputs[0]
        axes = [int(a) for a in np.atleast_1d(axes_t.data)]
        outer, reduce, inner = quant.mean_plan(x.shape, axes)
        q = quant.prepare_mean(x.scale, x.zero_point, y.scale, y.zero_point, reduce)
        self.comment(k, op, f"axes {axes}: [{outer}, {reduce}, {inner}] -> [{outer}, {inner}]")
        p = f"L{k}"
        self.static("dk_mean_params", f"{p}_p", f"{{{q.input_zero_point}, {q.output_zero_point}, {q.num_elements}, "
                                                f"{{{q.output.multiplier}, {q.output.shift}}}}}")
        self.body.append(f"        dk_mean_s8(&{p}_p, {outer}, {reduce}, {inner}, {self.ptr(x)}, {self.ptr(y)});")

    def _pool(self, k, op, fn):
        x, y = op.inputs[0], op.outputs[0]
        o = op.options
        pad = "SAME" if o.get("padding", 0) == 0 else "VALID"
        act = ACT_NAMES[o.get("fusedActivationFunction", 0)]
        if len(x.shape) != 4 or len(y.shape) != 4:
            raise UserError(f"op {k} {op.opcode} ({_layer_name(y)}) has input {list(x.shape)}; "
                            f"pooling takes [n, h, w, c]")
        q = quant.prepare_pool(x.scale, x.zero_point, y.scale, y.zero_point, tuple(x.shape[1:3]),
                               (o["filterHeight"], o["filterWidth"]), (o["strideH"], o["strideW"]), pad, act)
        self.comment(k, op, f"filter {q.filter_h}x{q.filter_w} stride {q.stride_h}x{q.stride_w} pad {pad} "
                            f"({q.pad_h},{q.pad_w}) act {act}; input and output share one scale")
        p = f"L{k}"
        self.static("dk_pool_params", f"{p}_p",
                    f"{{{q.stride_h}, {q.stride_w}, {q.pad_h}, {q.pad_w}, {q.filter_h}, {q.filter_w}, "
                    f"{{{q.activation.min}, {q.activation.max}}}}}")
        for nm, shp in (("in", x.shape), ("out", y.shape)):
            self.static("dk_dims", f"{p}_{nm}", "{%d, %d, %d, %d}" % tuple(shp))
        cast = "(void)" if fn == "dk_avgpool_s8" else ""
        self.body.append(f"        {cast}{fn}(&{p}_p, &{p}_in, {self.ptr(x)}, &{p}_out, {self.ptr(y)});")

    def op_max_pool_2d(self, k, op):
        self._pool(k, op, "dk_maxpool_s8")

    def op_average_pool_2d(self, k, op):
        self._pool(k, op, "dk_avgpool_s8")

    def _lut(self, k, op, table, note):
        x, y = op.inputs[0], op.outputs[0]
        self.comment(k, op, note)
        p = f"L{k}"
        self.array("int8_t", f"{p}_lut", table)
        self.body.append(f"        dk_lut_s8({p}_lut, {self.ptr(x)}, {self.ptr(y)}, {_numel(x.shape)});")

    def op_leaky_relu(self, k, op):
        x, y = op.inputs[0], op.outputs[0]
        alpha = float(op.options.get("alpha", 0.0))
        table = quant.leaky_relu_table(x.scale, x.zero_point, alpha, y.scale, y.zero_point)
        self._lut(k, op, table, f"alpha {alpha:.6g}: a 256-entry table filled as TFLM computes it")

    def op_prelu(self, k, op):
        x, alpha, y = op.inputs[0], op.inputs[1], op.outputs[0]
        pos = quant.quantize_multiplier(float(x.scale) / float(y.scale))
        neg = quant.quantize_multiplier(float(x.scale) * float(alpha.scale) / float(y.scale))
        self.comment(k, op, "x >= 0: x * s_in/s_out; x < 0: x * alpha * s_in*s_alpha/s_out")
        p = f"L{k}"
        self._broadcast(p, x, alpha)
        self.static("dk_prelu_params", f"{p}_p",
                    f"{{{-x.zero_point}, {-alpha.zero_point}, {y.zero_point}, "
                    f"{{{pos.multiplier}, {pos.shift}}}, {{{neg.multiplier}, {neg.shift}}}}}")
        self.body.append(f"        dk_prelu_s8(&{p}_p, &{p}_bc, {self.ptr(x)}, {self.ptr(alpha, 'alpha')}, "
                         f"{self.ptr(y)});")

    def op_hard_swish(self, k, op):
        x, y = op.inputs[0], op.outputs[0]
        table = quant.hard_swish_table(x.scale, x.zero_point, y.scale, y.zero_point)
        self._lut(k, op, table, "x * relu6(x + 3) / 6 in TFLM's int16 fixed point, as a 256-entry table")

    def op_relu6(self, k, op):
        x, y = op.inputs[0], op.outputs[0]
        table = quant.relu6_table(x.scale, x.zero_point)
        self._lut(k, op, table, "clamp to [zp, q(6)] in the input's quantization (TFLM does not "
                                "rescale), as a 256-entry table")

    def _same_quant(self, k, op, tensors):
        y = op.outputs[0]
        for t in tensors:
            if abs(float(t.scale) - float(y.scale)) > 1e-6 or t.zero_point != y.zero_point:
                raise UserError(f"op {k} {op.opcode} ({_layer_name(y)}): input {t.name!r} is quantized "
                                f"(scale {float(t.scale):.6g}, zero point {t.zero_point}) unlike its output "
                                f"(scale {float(y.scale):.6g}, zero point {y.zero_point}); TFLM requires "
                                f"them equal for int8")

    def op_pad(self, k, op):
        x, pads, y = op.inputs[0], op.inputs[1], op.outputs[0]
        self._same_quant(k, op, [x])
        if pads.data is None:
            raise UserError(f"op {k} {op.opcode} ({_layer_name(y)}) has run-time paddings; use constant ones")
        pads = np.asarray(pads.data, np.int64).reshape(-1, 2)
        dims = [int(d) for d in x.shape]
        while len(dims) > 4 and dims[0] == 1 and pads[0].sum() == 0:
            dims, pads = dims[1:], pads[1:]
        if len(dims) > 4:
            raise UserError(f"op {k} {op.opcode} ({_layer_name(y)}) pads a rank-{len(dims)} tensor; "
                            f"the compiled runtime pads up to four dimensions")
        lead = 4 - len(dims)
        dims = [1] * lead + dims
        pads = np.concatenate([np.zeros((lead, 2), np.int64), pads])
        value = y.zero_point
        if len(op.inputs) > 2 and op.inputs[2] is not None:
            if op.inputs[2].data is None:
                raise UserError(f"op {k} {op.opcode} ({_layer_name(y)}) has a run-time padding value")
            value = int(np.asarray(op.inputs[2].data).reshape(-1)[0])
        self.comment(k, op, f"paddings {pads.tolist()} value {value}")
        p = f"L{k}"
        self.static("dk_pad_params", f"{p}_p", "{{%s}, {%s}, {%s}, %d}" % (
            ", ".join(map(str, dims)), ", ".join(str(int(v)) for v in pads[:, 0]),
            ", ".join(str(int(v)) for v in pads[:, 1]), value))
        self.body.append(f"        dk_pad_s8(&{p}_p, {self.ptr(x)}, {self.ptr(y)});")

    op_padv2 = op_pad

    def op_transpose(self, k, op):
        x, perm_t, y = op.inputs[0], op.inputs[1], op.outputs[0]
        if perm_t.data is None:
            raise UserError(f"op {k} TRANSPOSE ({_layer_name(y)}) has a run-time permutation; use a constant one")
        perm = [int(v) for v in np.asarray(perm_t.data).reshape(-1)]
        dims = [int(d) for d in x.shape]
        # Leading dimensions of size 1 that stay in place can go; then pad to four.
        while len(dims) > 4 and dims[0] == 1 and perm[0] == 0:
            dims, perm = dims[1:], [p - 1 for p in perm[1:]]
        if len(dims) > 4:
            raise UserError(f"op {k} TRANSPOSE ({_layer_name(y)}) permutes {len(dims)} dimensions; the "
                            f"compiled runtime permutes up to four")
        lead = 4 - len(dims)
        dims = [1] * lead + dims
        perm = list(range(lead)) + [p + lead for p in perm]
        self.comment(k, op, f"permutation {perm} of {dims}")
        p = f"L{k}"
        self.static("dk_transpose_params", f"{p}_p", "{{%s}, {%s}}" % (", ".join(map(str, dims)),
                                                                       ", ".join(map(str, perm))))
        self.body.append(f"        dk_transpose_s8(&{p}_p, {self.ptr(x)}, {self.ptr(y)});")

    def op_concatenation(self, k, op):
        y = op.outputs[0]
        ins = [t for t in op.inputs if t is not None]
        self._same_quant(k, op, ins)
        if op.options.get("fusedActivationFunction", 0):
            raise UserError(f"op {k} CONCATENATION ({_layer_name(y)}) has a fused activation; the compiled "
                            f"runtime concatenates without one")
        axis = int(op.options.get("axis", 0))
        axis = axis + len(y.shape) if axis < 0 else axis
        outer = _numel(y.shape[:axis])
        sizes = [_numel(t.shape[axis:]) for t in ins]
        self.comment(k, op, f"axis {axis}: {outer} rows of {' + '.join(map(str, sizes))} bytes")
        p = f"L{k}"
        ptrs = []
        for j, t in enumerate(ins):
            ptrs.append(self.ptr(t, f"in{j}"))
        self.body.append(f"        static const int8_t *const {p}_in[{len(ins)}] = {{{', '.join(ptrs)}}};")
        self.array("int32_t", f"{p}_sizes", sizes)
        self.body.append(f"        dk_concat_s8({outer}, {len(ins)}, {p}_in, {p}_sizes, {self.ptr(y)});")

    def _alias(self, k, op):
        self.comment(k, op, "shape only: shares its input's memory")

    op_reshape = op_expand_dims = op_squeeze = _alias

    # -----------------------------------------------------------------------------------------
    def render(self) -> dict[str, str]:
        digest = hashlib.sha256(self.model_bytes).digest()
        externs = "\n".join(self.decls)
        inp, out = self.input, self.output

        def info(t: Tensor, name: str, kind="MODEL_TENSOR_ACTIVATION") -> str:
            # Drop the batch dimension; a rank-1 tensor has none.
            dims = list(t.shape[1:] if len(t.shape) > 1 else t.shape) or [1]
            dims = dims[-4:]
            padded = dims + [0] * (4 - len(dims))
            return (f'{{"{name}", {kind}, {len(dims)}, {{{", ".join(str(d) for d in padded)}}}, '
                    f"{_numel(t.shape)}u, {float(t.scale)!r}f, {t.zero_point}}}")

        tensors = {t.index: t for op in self.ops for t in op.outputs}
        layer_rows = [info(tensors[l["tensor"]], l["name"],
                           "MODEL_TENSOR_THRESHOLD" if l["threshold"] else "MODEL_TENSOR_ACTIVATION")
                      for l in self.layers]
        out_ptr = self.ptr(out)
        in_ptr = self.ptr(inp)
        n_in, n_out = _numel(inp.shape), _numel(out.shape)
        ops_summary = ", ".join(sorted({op.opcode for op in self.ops}))
        model_c = f"""/*
 * {self.name}: generated by drsn-edge firmware_gen from a {len(self.model_bytes)}-byte int8 .tflite.
 * Do not edit: regenerate with `drsn-edge firmware`.
 *
 * {len(self.ops)} operators ({ops_summary}); {self.weight_bytes} bytes of weights;
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
static const model_tensor_info output_info = {info(out, "output")};
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

    memcpy(out, {out_ptr}, {n_out});
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


ACT_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}
_KERNEL_NAMES = {"shrink": "dk_shrink_s8", "affine": "dk_channel_affine_s8", "absmean": "dk_abs_mean_s8",
                 "conv1d": "dk_conv1d_s8", "alias": "alias"}


def layer_macs(op: Operator) -> int:
    """Multiply-accumulates of one operator (convolutions and fully connected layers;
    element-wise operators count 0)."""
    if op.opcode == "CONV_2D":
        w = op.inputs[1].shape            # [out_c, kh, kw, in_c per group]
        return _numel(op.outputs[0].shape) * w[1] * w[2] * w[3]
    if op.opcode == "DEPTHWISE_CONV_2D":
        w = op.inputs[1].shape            # [1, kh, kw, out_c]
        return _numel(op.outputs[0].shape) * w[1] * w[2]
    if op.opcode == "FULLY_CONNECTED":
        return _numel(op.outputs[0].shape) * op.inputs[1].shape[1]
    return 0
SUPPORTED = {name[3:].upper() for name in dir(Emitter) if name.startswith("op_")}


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
        if len(op.outputs) != 1:
            raise UserError(f"{where}: op {op.index} {op.opcode} has {len(op.outputs)} outputs; the compiled "
                            f"runtime takes single-output ops; {tflm_hint}")
    graph_out = _graph_outputs(model_bytes)
    if ops and graph_out != [ops[-1].outputs[0].index]:
        raise UserError(f"{where}: the model's output is not the last op's output (outputs {graph_out}); "
                        f"the compiled runtime takes one output written by the last op; {tflm_hint}")
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


def generate(model_bytes: bytes, out_dir: str | Path, name: str = "model") -> dict:
    """Write model.c, model_data.c and model_info.json for this .tflite into out_dir."""
    em = Emitter(model_bytes, name)
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
        "steps": [{"kind": st.kind, "ops": st.ops, "inplace": st.info.get("inplace_of") is not None}
                  for st in em.steps],
        "weight_bytes": em.weight_bytes,
        "input": {"shape": list(em.input.shape), "scale": float(em.input.scale), "zero_point": em.input.zero_point},
        "output": {"shape": list(em.output.shape), "scale": float(em.output.scale), "zero_point": em.output.zero_point},
        "layers": em.layers,
        "sources": sorted(files),
    }
    artifacts.write_json(out_dir / "model_info.json", info)
    return info


def runtime_sources() -> list[Path]:
    return sorted((RUNTIME_DIR / "kernels").glob("*.c"))


def include_dirs() -> list[Path]:
    return [RUNTIME_DIR / "include", RUNTIME_DIR / "kernels", HARNESS_DIR]
