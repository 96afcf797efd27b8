"""`drsn-edge firmware`: the deployed int8 model -> C sources -> firmware image for a board,
with a boot self-test, checked by booting it, and a memory report.

Writes build/firmware/<board>/ (src/ with the generated C and selftest.c, firmware.elf,
.bin, .map) and build/reports/firmware.{json,md}. On an emulated board the image is booted
once in QEMU to read its self-test line (PASS/FAIL against the TFLM host runtime, the
instruction count and, where the board layer measures it, the stack high-water mark).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np

import boards
from drsn_edge.artifacts import paths, write_json, write_text
from drsn_edge.config import section
from drsn_edge.errors import UserError

MODEL_FILES = {"qat": "model_int8.tflite", "ptq": "model_ptq_int8.tflite"}
BACKENDS = ("compiled", "tflm")
SELFTEST_TIMEOUT_S = 120.0

# "drsn-edge: <board> <model> self-test PASS: 10 outputs equal TFLM, 123 instructions[, stack 456 bytes]"
_BANNER = re.compile(r"self-test (?P<verdict>PASS|FAIL|SKIP)(?P<detail>.*?)"
                     r"(?:, (?P<work>\d+) (?P<unit>instructions|cycles))?"
                     r"(?:, stack (?P<stack>\d+) bytes)?$")


def read_model(cfg: dict) -> tuple[Path, bytes]:
    """The deployed model's path and bytes, checked once (quantize/audit.py read_model):
    every stage that takes the .tflite goes through here. The project's model must take one
    data window; a model of the user's own (firmware.model_path, --model) keeps its shape."""
    from quantize.audit import read_model as read_checked
    user = user_model(cfg)
    if user is not None:
        return user, read_checked(user, user=True)
    path = model_path(cfg)
    return path, read_checked(path, int(cfg["data"]["window"]))


def user_model(cfg: dict) -> Path | None:
    """The user's own .tflite (firmware.model_path, `--model`), or None for the project's."""
    given = str((cfg.get("firmware") or {}).get("model_path") or "")
    return Path(given) if given else None


def model_path(cfg: dict) -> Path:
    """The .tflite that firmware.model names (default: the QAT model)."""
    which = section(cfg, "firmware")["model"]   # "qat" or "ptq": checked by config.load
    path = paths()["model"] / MODEL_FILES[which]
    if not path.is_file():
        raise UserError(f"{path} does not exist; run `make quantize` first")
    return path


def firmware_dir(board: str) -> Path:
    return paths()["firmware"] / board


def model_name(cfg: dict) -> str:
    """The architecture of the model in build/model, as `train` recorded it (the config at hand
    may name another one), else the config's; for a model of the user's own, its file name."""
    user = user_model(cfg)
    if user is not None:
        return re.sub(r"[^A-Za-z0-9_.-]", "_", user.stem)[:31] or "model"
    try:
        return str(json.loads((paths()["reports"] / "train.json").read_text())["model"]["arch"])
    except (OSError, ValueError, KeyError, TypeError):
        return str(cfg.get("model", {}).get("arch", "model"))


def run(cfg: dict, boot: bool = True) -> dict:
    """Build the firmware for firmware.board, boot it once to read the self-test, report."""
    started = time.monotonic()
    fw = section(cfg, "firmware")
    board = firmware_board(fw)
    model_file, model_bytes = read_model(cfg)
    name = model_name(cfg)
    out = firmware_dir(board.name)
    user = user_model(cfg) is not None
    if user and fw["standalone"]:
        raise UserError(f"firmware.standalone = true plays a vibration recording through this "
                        f"project's window preprocessing; {model_file} is your own model "
                        f"(--model): build it without --standalone")
    if fw["standalone"] and fw["backend"] != "compiled":
        raise UserError("firmware.standalone = true needs firmware.backend = \"compiled\" "
                        "(the TFLM back end has no standalone image); set one of them")
    if fw["backend"] == "compiled":
        # Before anything is written: an op or a shape the compiled runtime cannot take is
        # one line naming it (and the TFLM back end), not a half-built firmware directory.
        from firmware_gen import codegen
        codegen.check(model_bytes, str(model_file))
    # The recording too is read (and refused, if it must be) before anything is written.
    standalone = standalone_recording(cfg, model_bytes) if fw["standalone"] else None

    vector = (random_selftest_vector(model_bytes, int(cfg.get("seed", 0))) if user
              else selftest_vector(model_bytes, int(fw["selftest_vector"])))
    selftest_c = out / "src" / "selftest.c"
    write_text(selftest_c, selftest_source(name, vector))

    extra, defines = [selftest_c], []
    if standalone is not None:
        data_c = out / "src" / "standalone_data.c"
        write_text(data_c, standalone_source(standalone))
        from firmware_gen.build import STANDALONE_SOURCE
        extra += [STANDALONE_SOURCE, data_c]
        defines.append("DRSN_STANDALONE")

    print(f"firmware: {model_file} -> {board.name} ({fw['backend']} backend"
          f"{', standalone' if standalone else ''})")
    built = _build(fw, model_bytes, board, out, name, extra, defines, monitor=not user)
    report = memory_report(board, built, model_file)
    report["backend"] = fw["backend"]
    report["standalone"] = None if standalone is None else {
        k: standalone[k] for k in ("source", "first_sample", "samples", "hop", "smooth",
                                   "smooth_windows")}
    report["model"].update(model_card(model_bytes, user))
    report["selftest"] = {"vector": vector["index"], "label": vector["label"],
                          "input_kind": vector["kind"], "expected": vector["expected"].tolist()}
    if boot:
        line = boot_selftest(board.name, built["elf"])
        report["selftest"].update(parse_banner(line))
        report["stack"]["measured_bytes"] = report["selftest"].get("stack_bytes")
    report["seconds"] = round(time.monotonic() - started, 1)

    reports = paths()["reports"]
    write_json(reports / "firmware.json", report)
    write_text(reports / "firmware.md", markdown(report))
    print(summary(report))
    print(f"wrote {reports / 'firmware.json'} and firmware.md")
    if boot and not report["selftest"]["passed"]:
        raise UserError(f"the boot self-test on {board.name} failed: "
                        f"{report['selftest']['line']}")
    return {**built, "report": report}


def firmware_board(fw: dict) -> boards.Board:
    """firmware.board with its UART at firmware.baud (0: the board's own rate), checked to
    be reachable before anything is built."""
    board = boards.load(fw["board"])
    if fw["baud"]:
        board = dataclasses.replace(board, uart_baud=int(fw["baud"]))
    from boards.build import uart_divisor
    uart_divisor(board)
    return board


def _build(fw: dict, model_bytes: bytes, board: boards.Board, out: Path, name: str, extra,
           defines=(), monitor: bool = True) -> dict:
    if fw["backend"] == "tflm":
        from firmware_gen import tflm_backend
        return tflm_backend.build(model_bytes, board, out, name=name,
                                  tflm_lib=fw["tflm_lib"], tflm_include=fw["tflm_include"],
                                  arena_margin=int(fw["arena_margin"]), extra_sources=extra,
                                  monitor=monitor)
    from firmware_gen import build
    return build.build(model_bytes, board, out, name=name, extra_sources=extra, defines=defines,
                       monitor=monitor, optimize=fw["optimize"], flash_budget=int(fw["flash_budget"]))


# --- the standalone image ------------------------------------------------------------------

def standalone_recording(cfg: dict, model_bytes: bytes) -> dict:
    """The int16 samples the standalone image plays as its sensor: firmware.standalone_seconds
    of the monitor's recording (monitor.recording, else the bundled one), centred on its
    middle (where the bundled recording's fault appears), with the monitor's settings."""
    from firmware_gen import tflm_oracle
    from runner import monitor
    window = int(np.prod(tflm_oracle.model_inputs(model_bytes)[0].shape))
    m = monitor.settings(cfg, window)
    samples, source, _truth, _ = monitor.load_recording(cfg, m["recording"] or None)
    want = int(round(float(section(cfg, "firmware")["standalone_seconds"])
                     * float(cfg["data"]["fs_hz"])))
    if want < window:
        raise UserError(f"firmware.standalone_seconds gives {want} samples, fewer than one "
                        f"window of {window}; give a longer time")
    if len(samples) < window:
        raise UserError(f"{source} holds {len(samples)} samples, fewer than one window of "
                        f"{window}; give a longer recording")
    want = min(want, len(samples))
    first = (len(samples) - want) // 2
    return {"samples_i16": samples[first:first + want], "source": source,
            "first_sample": first, "samples": want, "hop": m["hop"], "smooth": m["smooth"],
            "smooth_windows": m["smooth_windows"]}


def standalone_source(rec: dict) -> str:
    from runner.protocol import SMOOTHING_MODES
    x = rec["samples_i16"]
    return (
        f"/*\n"
        f" * The standalone image's sensor: {rec['samples']} int16 samples from {rec['source']}\n"
        f" * (from sample {rec['first_sample']}), and the monitor's settings. Generated by\n"
        f" * drsn-edge firmware (firmware.standalone); do not edit.\n"
        f" */\n"
        f"#include <stdint.h>\n\n"
        + _c_array(f"const int16_t standalone_recording[{len(x)}]", x, per_line=12) + "\n"
        + f"const uint32_t standalone_recording_length = {len(x)}u;\n"
        + f"const uint32_t standalone_hop = {rec['hop']}u;\n"
        + f"const uint32_t standalone_smooth_windows = {rec['smooth_windows']}u;\n"
        + f"const uint8_t standalone_mode = {SMOOTHING_MODES.index(rec['smooth'])}u; "
          f"/* {rec['smooth']} */\n")


_VERDICT_LINE = re.compile(r"^verdict (\d+) start (\d+) class (\d+) smoothed (\d+) out "
                           r"(-?\d+(?:,-?\d+)*)$")


def parse_verdict_lines(lines) -> dict:
    """The standalone image's verdict lines -> start, class, smoothed, output arrays."""
    rows = [m.groups() for m in map(_VERDICT_LINE.match, lines) if m]
    return {"index": np.array([int(r[0]) for r in rows], np.int64),
            "start": np.array([int(r[1]) for r in rows], np.int64),
            "class": np.array([int(r[2]) for r in rows], np.int64),
            "smoothed": np.array([int(r[3]) for r in rows], np.int64),
            "output": np.array([[int(v) for v in r[4].split(",")] for r in rows], np.int64)}


# --- the boot self-test -----------------------------------------------------------------

def selftest_vector(model_bytes: bytes, index: int) -> dict:
    """Clean test window `index`, quantized for the model, and TFLM's output for it."""
    from drsn_edge.int8 import quantize_input
    from firmware_gen import tflm_oracle
    test = paths()["data"] / "test.npz"
    if not test.is_file():
        raise UserError(f"{test} does not exist; run `make train` first (the self-test "
                        f"input is a test window)")
    with np.load(test) as z:
        x, y = z["x_clean"], z["y"]
    if not 0 <= index < len(x):
        raise UserError(f"firmware.selftest_vector = {index} is outside the test set "
                        f"(0..{len(x) - 1})")
    inp = tflm_oracle.model_inputs(model_bytes)[0]
    if int(np.prod(inp.shape)) != x[index].size:
        raise UserError(f"the model takes {list(inp.shape)} but the test windows in {test} "
                        f"have {x[index].size} samples; train and quantize with the same config")
    q = quantize_input(x[index], inp.scale, inp.zero_point)
    expected = tflm_oracle.run(model_bytes, q).reshape(-1)
    return {"index": index, "label": int(y[index]), "input": q.reshape(-1), "kind": "test window",
            "expected": expected, "scale": float(inp.scale), "zero_point": int(inp.zero_point)}


SELFTEST_STREAM = 15   # the random self-test input: numpy stream [seed, 15]


def random_selftest_vector(model_bytes: bytes, seed: int) -> dict:
    """For a model with no test set here (a user's --model): a seeded random int8 input of
    the model's shape, and TFLM's output for it. A float32 input (quantized by the model's
    first op) gets seeded random floats over what its int8 quantization represents and a
    little beyond (drsn_edge.int8.random_float_inputs)."""
    from firmware_gen import tflm_oracle
    from runner.hil import model_input_of, random_inputs
    inp = model_input_of(model_bytes)
    q = random_inputs(np.random.default_rng([seed, SELFTEST_STREAM]), inp, 1)
    expected = tflm_oracle.run(model_bytes, q).reshape(-1)
    return {"index": None, "label": None, "input": q.reshape(-1), "kind": "random", "seed": seed,
            "expected": expected, "scale": inp.scale, "zero_point": inp.zero_point,
            "dtype": inp.dtype}


def model_card(model_bytes: bytes, user: bool) -> dict:
    """What firmware.json records of the deployed model: whose it is, its input and output
    shapes and quantization, and its ops."""
    from quantize.audit import STATIC_NOTES, inspect
    rep = inspect(model_bytes, verify=False)

    def io(t):
        return {"shape": t["shape"], "dtype": t["dtype"], "scale": t["scale"], "zero_point": t["zero_point"]}
    inp = io(rep["input"])
    if inp["dtype"] == "float32":   # quantized by the first op: record with what
        from firmware_gen import codegen, tflm_oracle
        inp.update(codegen.float_input_quantization(tflm_oracle.read_operators(model_bytes),
                                                    tflm_oracle.model_inputs(model_bytes)[0]))
    outs = [io(t) for t in rep["outputs"]]
    # several outputs: the frame holds them one after another, each with its own quantization
    output = outs[0] if len(outs) == 1 else {
        "shape": [1, sum(int(np.prod(o["shape"])) for o in outs)], "dtype": outs[0]["dtype"],
        "scale": None, "zero_point": None}
    return {"source": "user" if user else "project", "input": inp,
            "output": output, **({"outputs": outs} if len(outs) > 1 else {}), "op_counts": rep["op_counts"],
            "static_shapes": STATIC_NOTES.get(model_bytes)}


def _c_array(decl: str, values: np.ndarray, per_line: int = 16) -> str:
    rows = [", ".join(f"{int(v):4d}" for v in values[i:i + per_line])
            for i in range(0, len(values), per_line)]
    return f"{decl} = {{\n    " + ",\n    ".join(rows) + ",\n};\n"


def selftest_source(name: str, vector: dict) -> str:
    given = np.asarray(vector["input"])
    float_in = given.dtype == np.float32
    uint8_in = given.dtype == np.uint8
    if float_in:   # a float32 input (first QUANTIZE): its bytes, 4 per value
        given = given.astype("<f4").view(np.int8)
    elif uint8_in:   # a uint8 input (first QUANTIZE): its bytes
        given = given.view(np.int8)
    n_in = len(given)
    expected = np.asarray(vector["expected"])
    floats = expected.dtype == np.float32
    uint8_out = expected.dtype == np.uint8
    if floats:   # a float32 output (final DEQUANTIZE): its bytes, compared byte for byte
        expected = expected.astype("<f4").view(np.int8)
    elif uint8_out:   # a uint8 output (final QUANTIZE): its bytes
        expected = expected.view(np.int8)
    n_out = len(expected)
    if vector.get("kind") == "random" and float_in:
        what = (f" * Input: seeded random float32 values (seed {vector['seed']}; no test set for this\n"
                f" * model) as their {n_in} little-endian bytes, over what the model's first QUANTIZE\n"
                f" * (scale {vector['scale']:.9g}, zero point {vector['zero_point']}) represents and beyond.\n")
    elif vector.get("kind") == "random" and uint8_in:
        what = (f" * Input: seeded random uint8 values (seed {vector['seed']}; no test set for this\n"
                f" * model) as their bytes, for input scale {vector['scale']:.9g} and zero point "
                f"{vector['zero_point']}.\n")
    elif vector.get("kind") == "random":
        what = (f" * Input: seeded random int8 values (seed {vector['seed']}; no test set for this\n"
                f" * model), for input scale {vector['scale']:.9g} and zero point {vector['zero_point']}.\n")
    else:
        what = (f" * Input: clean test window {vector['index']} (class {vector['label']}), quantized\n"
                f" * with the model's input scale {vector['scale']:.9g} and zero point "
                f"{vector['zero_point']}.\n")
    return (
        f"/*\n"
        f" * Boot self-test of {name}, generated by drsn-edge firmware; do not edit.\n"
        + what +
        f" * Expected: what the TFLM host runtime outputs for it; main.c compares at boot.\n"
        + (f" * The output is float32: {n_out // 4} values as their {n_out} little-endian bytes.\n"
           if floats else "")
        + (f" * The output is uint8: {n_out} values as their bytes.\n" if uint8_out else "") +
        f" */\n"
        f"#include <stdint.h>\n\n"
        + _c_array(f"const int8_t selftest_input[{n_in}]", given) + "\n"
        + _c_array(f"const int8_t selftest_expected[{n_out}]", expected) + "\n"
        + f"int8_t selftest_actual[{n_out}];\n")


def boot_selftest(board: str, elf: Path, timeout: float = SELFTEST_TIMEOUT_S) -> str:
    """Boot the image in QEMU and return its self-test line."""
    with boards.Emulator(board, elf) as emu:
        return read_selftest(emu.url, timeout, lambda: f"QEMU said: {emu.stderr.strip() or 'nothing'}")


def read_selftest(url: str, timeout: float = SELFTEST_TIMEOUT_S, context=lambda: "") -> str:
    """The self-test line a freshly booted board prints; context() adds to the error."""
    from runner.link import Device
    with Device(url, timeout=timeout) as dev:
        lines = dev.console(timeout)
    if not lines:
        raise UserError(f"the board at {url} printed no self-test line within {timeout:.0f} s; "
                        f"{context()}")
    return lines[0]


def record_selftest(line: str) -> dict:
    """Add a self-test line read from a board to build/reports/firmware.{json,md}."""
    import json
    result = parse_banner(line)
    reports = paths()["reports"]
    try:
        report = json.loads((reports / "firmware.json").read_text())
    except (OSError, ValueError):
        return result
    report["selftest"].update(result)
    report["stack"]["measured_bytes"] = result.get("stack_bytes")
    write_json(reports / "firmware.json", report)
    write_text(reports / "firmware.md", markdown(report))
    return result


def parse_banner(line: str) -> dict:
    m = _BANNER.search(line)
    if not m:
        return {"passed": False, "line": line}
    out = {"passed": m["verdict"] == "PASS", "verdict": m["verdict"], "line": line}
    if m["work"]:
        out[m["unit"]] = int(m["work"])
    if m["stack"]:
        out["stack_bytes"] = int(m["stack"])
    return out


# --- memory report ------------------------------------------------------------------------

def optimize_lines(r: dict) -> list[str]:
    """What firmware.optimize and firmware.flash_budget did (none for the TFLM back end)."""
    if not r.get("optimize"):
        return []
    budget = r.get("flash_budget") or {}
    text = (f"Optimized for **{r['optimize']}** (firmware.optimize): the fast kernels' weights are "
            + ("int8 in flash, widened in the loop." if r["optimize"] == "size" else
               "widened to int16 in flash (`size` keeps them int8: about half the weight flash)."))
    if budget.get("to_fit_board"):
        text += (f" The speed image did not fit {r['board']}'s flash, so layers "
                 f"{budget.get('int8_weight_layers')} keep int8 weights.")
    if budget.get("flash_budget"):
        layers = budget.get("int8_weight_layers") or []
        text += (f" Flash budget {budget['flash_budget']:,} bytes: met"
                 + (f", with int8 weights in layers {layers}." if layers and r["optimize"] == "speed" else "."))
    return [text, ""]


def memory_report(board: boards.Board, built: dict, model_file: Path) -> dict:
    from boards.build import uart_divisor
    size = built["size"]
    info = built["model"]
    fits = size["flash_bytes"] <= board.flash_size and size["ram_bytes"] <= board.ram_size
    others = []
    for other_name in boards.available():
        other = boards.load(other_name)
        # Other boards differ only in drivers and stack reserve: estimate from this build.
        flash = size["flash_bytes"]
        ram = size["data"] + size["bss"] + other.stack_size
        others.append({"board": other.name, "core": other.core,
                       "flash_bytes": flash, "flash_size": other.flash_size,
                       "ram_bytes": ram, "ram_size": other.ram_size,
                       "fits": flash <= other.flash_size and ram <= other.ram_size,
                       "estimated": other.name != board.name})
    return {
        "board": board.name,
        "core": board.core,
        "model": {"path": str(model_file), "sha256": info["sha256"],
                  "bytes": model_file.stat().st_size, "ops": len(info.get("ops", [])),
                  "weight_bytes": info.get("weight_bytes"), "arena_bytes": info.get("arena_bytes")},
        "elf": str(built["elf"]),
        "sections": {k: size[k] for k in ("text", "rodata", "data", "bss", "stack")},
        "flash_bytes": size["flash_bytes"],
        "ram_bytes": size["ram_bytes"],
        "arena_bytes": info.get("arena_bytes"),
        "board_memory": {"flash_bytes": board.flash_size, "ram_bytes": board.ram_size},
        "flash_used_pct": round(100 * size["flash_bytes"] / board.flash_size, 2),
        "optimize": built.get("optimize"),
        "flash_budget": built.get("budget"),
        "ram_used_pct": round(100 * size["ram_bytes"] / board.ram_size, 2),
        "stack": {"reserved_bytes": board.stack_size, "measured_bytes": None},
        "uart": uart_divisor(board).describe(),
        "fits": fits,
        "monitor": monitor_memory(built["elf"]),
        "boards": others,
        "sha256_elf": hashlib.sha256(Path(built["elf"]).read_bytes()).hexdigest(),
    }


def monitor_memory(elf) -> dict:
    """The streaming monitor's static RAM (firmware_gen/harness/monitor.c), in .bss: the
    ring buffer of one window and the scratch (linear window, int8 input, output and the
    smoothing history)."""
    from boards.build import symbol_sizes
    sizes = symbol_sizes(elf, ("monitor_ring", "monitor_scratch"))
    ring, scratch = sizes["monitor_ring"], sizes["monitor_scratch"]
    total = None if ring is None or scratch is None else ring + scratch
    return {"ring_bytes": ring, "scratch_bytes": scratch, "total_bytes": total}


def _kb(n) -> str:
    return "n/a" if n is None else f"{n / 1024:.1f} KB"


def summary(r: dict) -> str:
    st = r.get("selftest", {})
    work = st.get("instructions") or st.get("cycles")
    verdict = st.get("verdict", "not run")
    return (f"{r['board']}: flash {_kb(r['flash_bytes'])} of {_kb(r['board_memory']['flash_bytes'])}, "
            f"RAM {_kb(r['ram_bytes'])} of {_kb(r['board_memory']['ram_bytes'])} "
            f"(arena {_kb(r['arena_bytes'])}, stack reserve {_kb(r['stack']['reserved_bytes'])}"
            + (f", stack used {_kb(r['stack']['measured_bytes'])}" if r['stack'].get('measured_bytes') else "")
            + f"); self-test {verdict}" + (f", {work:,} instructions" if work else ""))


def markdown(r: dict) -> str:
    s = r["sections"]
    st = r.get("selftest", {})
    lines = [
        f"# Firmware: {r['board']} ({r['core']}, {r['backend']} backend)",
        "",
        f"Model `{r['model']['path']}` (sha256 `{r['model']['sha256'][:16]}…`, "
        f"{r['model']['bytes']:,} bytes, {r['model']['ops']} ops) → `{r['elf']}`.",
        "",
    ]
    if r["model"].get("input"):
        i, o = r["model"]["input"], r["model"]["output"]

        def quant(t):   # a float32 input or output (first QUANTIZE, final DEQUANTIZE) is not quantized
            if t.get("quantized_by"):
                q = t["quantized_by"]
                return f" (quantized on the board: scale {q['scale']:.6g}, zero point {q['zero_point']})"
            return (f" (scale {t['scale']:.6g}, zero point {t['zero_point']})" if t.get("scale") is not None
                    else "")
        lines += [f"{'Your model' if r['model'].get('source') == 'user' else 'Model'}: input "
                  f"{i['shape']} {i['dtype']}{quant(i)} → output {o['shape']} {o['dtype']}{quant(o)}; ops "
                  + ", ".join(f"{k} ×{v}" for k, v in r["model"]["op_counts"].items()) + ".", ""]
        if r["model"].get("static_shapes"):
            lines += [f"Deployed as static: {r['model']['static_shapes']['what']} "
                      f"(`quantize/static_shapes.py`; TFLM runs it the same way).", ""]
    lines += [
        "| | bytes | |",
        "|---|---:|---|",
        f"| .text (code) | {s['text']:,} | flash |",
        f"| .rodata (weights, tables) | {s['rodata']:,} | flash |",
        f"| .data | {s['data']:,} | flash + RAM |",
        f"| .bss (incl. the tensor arena) | {s['bss']:,} | RAM |",
        f"| tensor arena | {r['arena_bytes'] or 0:,} | RAM (in .bss) |",
        f"| monitor ring buffer + scratch | {r['monitor']['ring_bytes'] or 0:,} + "
        f"{r['monitor']['scratch_bytes'] or 0:,} | RAM (in .bss) |",
        f"| stack reserve | {s['stack']:,} | RAM |",
        f"| stack used (measured at boot) | "
        f"{r['stack']['measured_bytes'] if r['stack'].get('measured_bytes') is not None else 'n/a'} | RAM |",
        f"| **flash total** | **{r['flash_bytes']:,}** | {r['flash_used_pct']} % of "
        f"{r['board_memory']['flash_bytes']:,} |",
        f"| **RAM total** | **{r['ram_bytes']:,}** | {r['ram_used_pct']} % of "
        f"{r['board_memory']['ram_bytes']:,} |",
        "",
        f"Fits {r['board']}: **{'yes' if r['fits'] else 'NO'}**.",
        "",
        *optimize_lines(r),
        f"Serial port: {r['uart']['baud']:,} baud 8N1 (the divisor gives "
        f"{r['uart']['actual_baud']:,.0f}, {r['uart']['error_percent']:+.2f} %, from a "
        f"{r['uart']['uart_clock_hz'] / 1e6:g} MHz UART clock; firmware.baud sets it).",
        "",
        ("Boot self-test (seeded random input): " if st.get("input_kind") == "random" else
         f"Boot self-test (test window {st.get('vector')}, class {st.get('label')}): ")
        + f"**{st.get('verdict', 'not run')}**" + (f" — `{st['line']}`" if st.get("line") else ""),
        "",
        "## Other boards",
        "",
        "Estimated from this build (same code and data; each board's own stack reserve).",
        "",
        "| board | core | flash | of | RAM | of | fits |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for b in r["boards"]:
        lines.append(f"| {b['board']}{'' if b['estimated'] else ' (built)'} | {b['core']} | "
                     f"{b['flash_bytes']:,} | {b['flash_size']:,} | {b['ram_bytes']:,} | "
                     f"{b['ram_size']:,} | {'yes' if b['fits'] else 'NO'} |")
    return "\n".join(lines) + "\n"
