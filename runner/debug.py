"""`drsn-edge hil --debug N`: one vector, layer by layer, device against the TFLM host.

The board's DEBUG command returns every layer's int8 output and the shrinkage thresholds
tau; the TFLM host runtime, run with every tensor preserved (tflm_oracle.run_capture),
gives the same tensors on the host. The first layer whose bytes differ is where to look: a
kernel, its requantization, or the arena plan overwriting a tensor still in use.

In raw mode (hil.input = "raw") the vector's int16 window first goes through the RAW
command, and the int8 input the board's preprocessing made is compared with
drsn_edge.preprocess on the host: the stage before the first layer.

Writes build/reports/hil_debug.json and prints a table; exit code 0 when every layer
(and, raw, the preprocessing) matches, 1 otherwise.
"""

from __future__ import annotations

import re

import numpy as np

from drsn_edge import artifacts
from drsn_edge.errors import UserError

_OP_PREFIX = re.compile(r"^(\d+):")


def _op_index(name: str) -> int | None:
    """The generated firmware names its layers "<op index>:<op>:<layer>"."""
    m = _OP_PREFIX.match(name)
    return int(m.group(1)) if m else None


def compare(dump, model: bytes, x: np.ndarray) -> dict:
    """Every layer of `dump` (a link.DebugResult) against TFLM's tensors for input x."""
    from firmware_gen import tflm_oracle
    ops = tflm_oracle.read_operators(model)
    captured = tflm_oracle.run_capture(model, [x[None]])
    by_name = {t.name: t.index for op in ops for t in op.outputs}
    rows, first, taus = [], None, []
    for layer in dump.layers:
        info = layer.info
        k = _op_index(info.name)
        index = ops[k].outputs[0].index if k is not None and k < len(ops) else \
            by_name.get(info.name.split(":")[-1])
        host = captured.get(index) if index is not None else None
        got = np.asarray(layer.data)
        floats = got.dtype == np.float32      # the float32 output of a final DEQUANTIZE
        got = got.reshape(-1) if floats else got.astype(np.int8).reshape(-1)
        if host is not None and np.asarray(host).dtype == np.uint8:   # the model's uint8 input or output
            got = got.view(np.uint8)
        row = {"layer": info.index, "name": info.name, "kind": info.kind,
               "shape": list(info.tensor.shape), "size": int(got.size)}
        if host is None:
            row["status"] = "no host tensor"
        else:
            want = np.asarray(host).astype(got.dtype).reshape(-1)
            if want.size != got.size:
                row["status"] = f"size {got.size} on the device, {want.size} on the host"
                row["differing"] = int(got.size)
            else:
                if floats:      # bit patterns: the distance in units in the last place
                    d = np.abs(got.astype("<f4").view("<i4").astype(np.int64)
                               - want.astype("<f4").view("<i4").astype(np.int64))
                else:
                    d = np.abs(got.astype(np.int16) - want.astype(np.int16))
                row["differing"] = int(np.count_nonzero(d))
                row["max_lsb"] = int(d.max(initial=0))
                row["status"] = "equal" if not row["differing"] else "DIFFERS"
                if row["differing"]:
                    at = int(np.argmax(d > 0))
                    value = float if floats else int
                    row["first_difference"] = {"element": at, "device": value(got[at]),
                                               "host": value(want[at])}
            if layer.info.kind == "threshold" and want.size == got.size:
                scale, zp = info.tensor.scale, info.tensor.zero_point
                taus.append({
                    "layer": info.name,
                    "device_int8": got.tolist(), "host_int8": want.tolist(),
                    "device": [round((int(v) - zp) * scale, 6) for v in got],
                    "host": [round((int(v) - zp) * scale, 6) for v in want],
                })
        if first is None and row.get("differing"):
            first = row
        rows.append(row)
    # the model's outputs, one after another as the output frame holds them
    outs = [captured.get(t.index) for t in tflm_oracle.model_outputs(model)]
    out_host = None if any(o is None for o in outs) else (
        outs[0] if len(outs) == 1 else np.concatenate([np.asarray(o).reshape(-1) for o in outs]))
    dev_out = np.asarray(dump.output)
    dev_out = dev_out if dev_out.dtype == np.float32 else dev_out.astype(np.int8)
    if out_host is not None and np.asarray(out_host).dtype == np.uint8:     # a uint8 output
        dev_out = dev_out.view(np.uint8)
    output_equal = out_host is not None and (     # the same bytes (float32 outputs too)
        np.asarray(out_host, dev_out.dtype).reshape(-1).tobytes() == dev_out.reshape(-1).tobytes())
    return {"layers": rows, "first_difference": first, "tau": taus,
            "output_equal": bool(output_equal),
            "device_output": dev_out.reshape(-1).tolist(),
            "host_output": None if out_host is None else np.asarray(out_host).reshape(-1).tolist()}


def run(dev, model: bytes, vs, n: int, info) -> int:
    if not 0 <= n < len(vs):
        raise UserError(f"--debug {n}: there are {len(vs)} vectors (0..{len(vs) - 1}); the "
                        f"mismatches in build/reports/hil.json name them by this index")
    x = vs.x[n]
    pre = None
    if vs.raw is not None:
        raw = dev.infer_raw(vs.raw[n])
        want = np.asarray(x, np.int8).reshape(-1)
        d = np.abs(raw.input.astype(np.int16) - want.astype(np.int16))
        pre = {"differing": int(np.count_nonzero(d)), "max_lsb": int(d.max(initial=0)),
               "size": int(want.size), "work": int(raw.preprocess_work)}
        if pre["differing"]:
            at = int(np.argmax(d > 0))
            pre["first_difference"] = {"element": at, "device": int(raw.input[at]),
                                       "host": int(want[at])}
    result = compare(dev.debug(x), model, x)
    result["preprocessing"] = pre
    result.update({"vector": n, "condition": vs.condition_name(n),
                   "window": None if vs.window is None else int(vs.window[n]),
                   "label": None if vs.y is None else int(vs.y[n]),
                   "board": info.board, "model_hash": info.model_hash.hex()})
    path = artifacts.write_json(artifacts.paths()["reports"] / "hil_debug.json", result)
    print(format_table(result))
    print(f"wrote {path}")
    pre_ok = pre is None or pre["differing"] == 0
    return 0 if result["first_difference"] is None and result["output_equal"] and pre_ok else 1


def format_table(r: dict) -> str:
    lines = [f"vector {r['vector']} ({r['condition']}) on {r['board']}: every layer vs the "
             f"TFLM host runtime", "",
             f"{'#':>3}  {'layer':<52} {'shape':<14} {'differ':>7} {'max LSB':>7}"]
    pre = r.get("preprocessing")
    if pre is not None:
        lines.append(f"{'-':>3}  {'preprocess (int16 -> int8, vs drsn_edge.preprocess)':<52} "
                     f"{pre['size']:<14} {pre['differing']!s:>7} {pre['max_lsb']!s:>7}")
    for row in r["layers"]:
        differ = row.get("differing", "")
        lines.append(f"{row['layer']:>3}  {row['name'][:52]:<52} "
                     f"{'x'.join(map(str, row['shape'])):<14} {differ!s:>7} "
                     f"{row.get('max_lsb', '')!s:>7}" +
                     ("" if row["status"] in ("equal", "DIFFERS") else f"  ({row['status']})"))
    lines.append("")
    if pre is not None:
        fd = pre.get("first_difference")
        lines.append(f"preprocessing: {pre['work']} counts on the board; " +
                     ("the int8 input equals the host's" if not fd else
                      f"DIFFERS in {pre['differing']} samples (sample {fd['element']}: device "
                      f"{fd['device']}, host {fd['host']}); the layers below ran on the host's "
                      f"input"))
    f = r["first_difference"]
    if f is None:
        lines.append(f"all {len(r['layers'])} layers equal TFLM" +
                     ("" if r["output_equal"] else "; but the OUTPUT differs"))
    else:
        fd = f.get("first_difference", {})
        lines.append(f"first layer that differs: {f['name']} ({f['differing']} of {f['size']} "
                     f"values, up to {f.get('max_lsb', '?')} LSB; element {fd.get('element')}: "
                     f"device {fd.get('device')}, host {fd.get('host')})")
    for tau in r["tau"]:
        lines += ["", f"tau per channel, {tau['layer']} (device / host, dequantized):"]
        pairs = [f"{d:.4f}/{h:.4f}" + ("" if di == hi else " *")
                 for d, h, di, hi in zip(tau["device"], tau["host"], tau["device_int8"],
                                         tau["host_int8"])]
        for i in range(0, len(pairs), 6):
            row = pairs[i:i + 6]
            lines.append("  " + "  ".join(f"c{i + j:<3}{p:<19}" for j, p in enumerate(row)))
    return "\n".join(lines)
