"""Generate plain C for one int8 .tflite model: the "compiled runtime".

The device gets no interpreter and no flatbuffer: every operator becomes one call into the
dk kernel library (firmware_gen/runtime) with its quantization arithmetic already done here
(firmware_gen/quant.py mirrors what TFLM computes in its Prepare step), and every activation
lives at a fixed offset of one static arena, planned from the tensors' lifetimes.

Output (in `out_dir`):
    model_data.c   weights and biases as const arrays, 16-byte aligned
    model.c        the model: one commented call per layer, implementing model_api.h
    model_info.json  what was generated: ops, arena plan, sizes, hash (for reports/tests)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
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


def _layer_name(tensor: Tensor) -> str:
    """The Keras layer a tensor came from: TF names tensors like
    'drsn_cw_1/rsbu1_conv1/convolution;...' (first path component is the model)."""
    first = tensor.name.split(";")[0]
    parts = [p for p in first.split("/") if p]
    if len(parts) >= 2:
        return parts[1]
    return parts[0] if parts else f"tensor{tensor.index}"


# --- memory plan ------------------------------------------------------------------------------

def plan_memory(ops: list[Operator], input_index: int, output_index: int) -> tuple[dict[int, Placement], dict[int, int], int]:
    """Greedy first-fit placement by decreasing size of every activation tensor, so that two
    tensors share bytes only when their lifetimes do not overlap. Returns the placement of
    each root tensor, the alias map (tensor -> root) and the arena size."""
    alias: dict[int, int] = {}

    def root(i):
        while i in alias:
            i = alias[i]
        return i

    life: dict[int, list[int]] = {input_index: [-1, -1]}
    sizes: dict[int, int] = {input_index: _numel(model_tensor_shape(ops, input_index))}
    for k, op in enumerate(ops):
        acts = [t for t in op.inputs if t is not None and t.data is None]
        for t in acts:
            r = root(t.index)
            life.setdefault(r, [k, k])[1] = k
        out = op.outputs[0]
        if op.opcode in ALIASES and acts:
            alias[out.index] = root(acts[0].index)
            life[root(out.index)][1] = max(life[root(out.index)][1], k)
        else:
            life[out.index] = [k, k]
            sizes[out.index] = _numel(out.shape)
    life[root(output_index)][1] = len(ops)

    placed: dict[int, Placement] = {}
    for t in sorted(sizes, key=lambda i: (-sizes[i], life[i][0], i)):
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
    return placed, {i: root(i) for i in list(alias) }, arena


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
        self.placed, self.alias, self.arena = plan_memory(self.ops, self.input.index, self.output.index)

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
        for k, op in enumerate(self.ops):
            handler = getattr(self, f"op_{op.opcode.lower()}", None)
            if handler is None:
                raise UserError(f"operator {op.opcode} (layer {_layer_name(op.outputs[0])}) has no kernel "
                                f"in the compiled runtime; supported: {', '.join(sorted(SUPPORTED))}")
            self.k = k
            handler(k, op)
            self.body.append("    }")
            out = op.outputs[0]
            r = self.alias.get(out.index, out.index)
            self.layers.append({"name": f"{k}:{op.opcode.lower()}:{_layer_name(out)}"[:63], "op": op.opcode,
                                "tensor": out.index, "offset": self.placed[r].offset, "shape": list(out.shape),
                                "scale": float(out.scale), "zero_point": out.zero_point,
                                "threshold": op.opcode == "RESHAPE" and _layer_name(out).endswith("_tau_t")})
            self.body.append("    EMIT(%d);" % k)

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

    def _alias(self, k, op):
        self.comment(k, op, "shape only: shares its input's memory")

    op_reshape = op_expand_dims = op_squeeze = _alias

    # -----------------------------------------------------------------------------------------
    def render(self) -> dict[str, str]:
        digest = hashlib.sha256(self.model_bytes).digest()
        externs = "\n".join(self.decls)
        inp, out = self.input, self.output

        def info(t: Tensor, name: str, kind="MODEL_TENSOR_ACTIVATION") -> str:
            dims = [d for d in t.shape[1:]] or [1]
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
static int run(const int8_t *in, int8_t *out, model_emit_fn emit, void *ctx)
{{
#define EMIT(i) do {{ if (emit) emit((i), arena + layer_offset[i], layers[i].size, ctx); }} while (0)
    memcpy({in_ptr}, in, {n_in});
{chr(10).join(self.body)}

    memcpy(out, {out_ptr}, {n_out});
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
SUPPORTED = {name[3:].upper() for name in dir(Emitter) if name.startswith("op_")}


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
