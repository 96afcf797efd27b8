"""The second firmware back end: the model interpreted on the board by TensorFlow Lite Micro.

The compiled runtime (firmware_gen/build.py) needs nothing but our own sources. This back
end is for users who have TFLM: TFLM's C++ sources are not in any package registry, so the
user builds TFLM's static library for the board's core with TFLM's own documentation and
points us at it (TFLM_LIB = the .a, TFLM_INCLUDE = the source/include root holding
tensorflow/lite/micro/ and the flatbuffers headers). drsn-edge never builds TFLM itself.

Both back ends share the board layer and the serial harness (main.c, protocol.c); here the
model_api.h implementation is firmware_gen/harness/tflm_model.cc over tflite::MicroInterpreter,
and what differs per model is generated into out_dir/src:

    model_data.cc  the .tflite as a 16-byte aligned const array, its length and SHA-256
    tflm_model.h   a MicroMutableOpResolver<N> registering exactly the model's N op types,
                   the arena size, the input/output descriptions INFO reports
    model_info.json  what was built (ops, arena measured and reserved, library)

The arena size comes from a measured run: a first image with a generous arena boots in QEMU
and reports interpreter.arena_used_bytes() through INFO; the image that is kept reserves that
plus a margin (an arena of exactly arena_used_bytes() has been seen to fail), doubled until
the image starts (a stack of ten FULLY_CONNECTED layers needed 4 KB over the measure). The
figures are cached in out_dir/tflm_arena.json, keyed by everything that could change it, so
rebuilding the same model with the same library boots once (to check the image) instead of
building twice.

The HIL runner's DEBUG (per-layer dumps) is not available with this back end; see
tflm_model.cc for why. model_invoke_debug answers DEBUG_UNSUPPORTED.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import boards
from boards import build as board_build
from boards.board import Board
from drsn_edge import artifacts
from drsn_edge.errors import UserError
from firmware_gen import tflm_oracle
from firmware_gen.build import HARNESS_INCLUDE_DIRS, HARNESS_SOURCES, harness_defines

HARNESS_DIR = Path(__file__).resolve().parent / "harness"
MODEL_SOURCE = HARNESS_DIR / "tflm_model.cc"
READELF = "arm-none-eabi-readelf"
NM = "arm-none-eabi-nm"

INTERPRETER_HEADER = "tensorflow/lite/micro/micro_interpreter.h"
RESOLVER_HEADER = "tensorflow/lite/micro/micro_mutable_op_resolver.h"
# Third-party headers TFLM's own headers include: flatbuffers, and gemmlowp's fixed point.
THIRD_PARTY_HEADERS = {"flatbuffers/flatbuffers.h": "flatbuffers",
                       "fixedpoint/fixedpoint.h": "gemmlowp"}
# Where TFLM keeps its third-party headers, relative to its root: an exported tree
# (create_tflm_tree.py) puts them under third_party/, a Makefile build under downloads/.
THIRD_PARTY_DIRS = [
    "third_party/flatbuffers/include", "third_party/gemmlowp", "third_party/ruy",
    "tensorflow/lite/micro/tools/make/downloads/flatbuffers/include",
    "tensorflow/lite/micro/tools/make/downloads/gemmlowp",
    "tensorflow/lite/micro/tools/make/downloads/ruy",
]
# Every TFLM build defines it, and it changes the layout of TfLiteTensor: a harness
# compiled without it would read the library's tensors wrongly.
REQUIRED_DEFINES = ("TF_LITE_STATIC_MEMORY",)

# model_init / model_invoke codes of tflm_model.cc (its TFLM_ERR_* defines).
STATUS = {
    10: "the .tflite's schema version differs from the TFLM library's",
    11: "registering an op in the MicroMutableOpResolver failed",
    12: "AllocateTensors failed: the tensor arena is too small",
    13: "the model's input or output tensor is not the int8 tensor the firmware expects",
    14: "the interpreter's Invoke failed",
    15: "per-layer DEBUG dumps are not supported by the tflm backend",
    16: "the model was not initialised",
}
ARENA_TOO_SMALL = 12
DEBUG_UNSUPPORTED = 15

ALIGN = 16
# Harness buffers, board statics and the TFLM library's own .bss, kept free when the first,
# generous arena is sized for a board with little RAM.
RAM_RESERVE = 48 * 1024
CACHE_FILE = "tflm_arena.json"
HOW_TO_BUILD = ("see TFLM's documentation for building the library for your core "
                "(tensorflow/lite/micro/docs in the tflite-micro repository)")


@dataclass
class Toolkit:
    """A user's TFLM: the static library and the include directories to compile against."""
    lib: Path
    root: Path                                   # the directory with tensorflow/lite/micro
    include_dirs: list[Path] = field(default_factory=list)
    defines: list[str] = field(default_factory=list)


# --- locating and checking the user's TFLM -------------------------------------------------

def locate(tflm_lib: str = "", tflm_include: str = "") -> Toolkit:
    """Check the library and include paths (config values, else env TFLM_LIB /
    TFLM_INCLUDE) and find the headers TFLM needs. TFLM_INCLUDE may list several
    directories separated by os.pathsep."""
    lib_text = tflm_lib or os.environ.get("TFLM_LIB", "")
    inc_text = tflm_include or os.environ.get("TFLM_INCLUDE", "")
    lib_from = "firmware.tflm_lib" if tflm_lib else "TFLM_LIB"
    inc_from = "firmware.tflm_include" if tflm_include else "TFLM_INCLUDE"
    if not lib_text or not inc_text:
        unset = " and ".join(n for n, v in (("TFLM_LIB", lib_text), ("TFLM_INCLUDE", inc_text))
                             if not v)
        raise UserError(
            f"firmware.backend = \"tflm\" needs a prebuilt TensorFlow Lite Micro, but {unset} "
            f"is not set: set TFLM_LIB to the static library built for the board's core "
            f"(libtensorflow-microlite.a) and TFLM_INCLUDE to the TFLM source root it was "
            f"built from (or firmware.tflm_lib / firmware.tflm_include in the config); "
            f"{HOW_TO_BUILD}. The compiled backend (firmware.backend = \"compiled\") needs "
            f"none of this")

    lib = Path(lib_text).expanduser()
    if not lib.is_file():
        raise UserError(f"{lib_from} = {lib}: no such file; point it at the TFLM static library "
                        f"(libtensorflow-microlite.a) built for the board's core; {HOW_TO_BUILD}")
    with open(lib, "rb") as f:
        magic = f.read(8)
    if magic not in (b"!<arch>\n", b"!<thin>\n"):
        raise UserError(f"{lib_from} = {lib} is not a static library (an ar archive, .a); "
                        f"point it at libtensorflow-microlite.a from your TFLM build")

    roots = [Path(p).expanduser() for p in inc_text.split(os.pathsep) if p]
    for root in roots:
        if not root.is_dir():
            raise UserError(f"{inc_from} = {root}: no such directory; point it at the TFLM "
                            f"source root (the directory holding tensorflow/lite/micro/)")
    root = next((r for r in roots if (r / INTERPRETER_HEADER).is_file()), None)
    if root is None:
        raise UserError(f"{inc_from} = {inc_text} lacks {INTERPRETER_HEADER}; point it at the "
                        f"TFLM source root (the directory holding tensorflow/lite/micro/), not "
                        f"at a subdirectory")
    dirs = list(dict.fromkeys(
        [*roots, *(r / d for r in roots for d in THIRD_PARTY_DIRS if (r / d).is_dir())]))
    for header, package in THIRD_PARTY_HEADERS.items():
        if not any((d / header).is_file() for d in dirs):
            raise UserError(f"{inc_from} = {inc_text}: no {header} in it, nor under its "
                            f"third_party/ or the TFLM Makefile's downloads/ folder; add the "
                            f"{package} include directory TFLM was built with to {inc_from}, "
                            f"separated by '{os.pathsep}'")
    if not (root / RESOLVER_HEADER).is_file():
        raise UserError(f"{root} lacks {RESOLVER_HEADER}; this TFLM is too old or incomplete")
    defines = list(REQUIRED_DEFINES)
    if _strips_error_strings(lib):
        # Then MicroPrintf is a macro in the headers and no function in the library: the
        # harness must see the same, or it links against a symbol that is not there.
        defines.append("TF_LITE_STRIP_ERROR_STRINGS")
    return Toolkit(lib=lib, root=root, include_dirs=dirs, defines=defines)


def check_library(lib: str | Path, board: str | Board) -> None:
    """Refuse a library built for another core or float ABI than the board's, before the
    linker does so less clearly. Reads each member's Arm build attributes."""
    board = boards.load(board)
    want = _board_attributes(board)
    for member, attrs in _archive_attributes(Path(lib)):
        machine = attrs.get("Machine", "")
        if machine and (machine != "ARM" or attrs.get("Class") != "ELF32"):
            raise UserError(f"{lib} holds {member} built for {machine} "
                            f"({attrs.get('Class', '?')}), not for a 32-bit Arm core; build "
                            f"TFLM for {board.name}'s {board.core} ({' '.join(board.cflags)}); "
                            f"{HOW_TO_BUILD}")
        if "Tag_CPU_arch" not in attrs:
            continue
        problem = _incompatibility(attrs, want)
        if problem:
            raise UserError(f"{lib} does not fit {board.name}: {problem} ({member}). Build TFLM "
                            f"for the board's core with {' '.join(board.cflags)}; {HOW_TO_BUILD}")


def resolver_methods(root: str | Path) -> dict[str, str]:
    """Builtin op name -> the MicroMutableOpResolver method that registers it, read from
    the user's TFLM header (so a newer TFLM's ops are known without a table here)."""
    text = (Path(root) / RESOLVER_HEADER).read_text(errors="replace")
    found = re.findall(r"TfLiteStatus\s+(Add\w+)\s*\([^{};]*\)\s*\{\s*return\s+AddBuiltin\(\s*"
                       r"(?:tflite::)?BuiltinOperator_(\w+)", text)
    return {op: method for method, op in found}


def resolver_ops(model_bytes: bytes, methods: dict[str, str] | None = None,
                 where: str = "") -> list[tuple[str, str]]:
    """(op, resolver method) for each op type of the model, in order of first use.

    methods: from resolver_methods(); None derives the names (CONV_2D -> AddConv2D)."""
    ops = list(dict.fromkeys(op.opcode for op in tflm_oracle.read_operators(model_bytes)))
    if methods is None:
        return [(op, "Add" + "".join(p[:1] + p[1:].lower() for p in op.split("_"))) for op in ops]
    missing = [op for op in ops if op not in methods]
    if missing:
        raise UserError(f"the model uses {', '.join(missing)}, which the TFLM at {where or 'hand'} "
                        f"cannot register (its MicroMutableOpResolver has no Add method for "
                        f"{'it' if len(missing) == 1 else 'them'}); use a TFLM version that "
                        f"has {'this kernel' if len(missing) == 1 else 'these kernels'}, or "
                        f"change the model (`python -m quantize.audit model.tflite` lists its "
                        f"ops), or use the compiled backend")
    return [(op, methods[op]) for op in ops]


# --- generating the sources --------------------------------------------------------------

def generate(model_bytes: bytes, out_dir: str | Path, name: str = "model",
             arena_bytes: int = 64 * 1024, methods: dict[str, str] | None = None) -> dict:
    """Write model_data.cc, tflm_model.h and model_info.json for this .tflite into out_dir."""
    out_dir = Path(out_dir)
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        raise UserError(f"model name {name!r}: use letters, digits, '_', '-' and '.' only")
    ops = resolver_ops(model_bytes, methods)
    arena = _round_up(arena_bytes)
    inp, out = _io_tensors(model_bytes)
    digest = hashlib.sha256(model_bytes)
    artifacts.write_text(out_dir / "model_data.cc", _data_source(model_bytes, name, digest.digest()))
    artifacts.write_text(out_dir / "tflm_model.h", _config_header(name, ops, arena, inp, out))
    all_ops = [op.opcode for op in tflm_oracle.read_operators(model_bytes)]
    info = {
        "name": name,
        "backend": "tflm",
        "sha256": digest.hexdigest(),
        "ops": all_ops,
        "resolver": [method for _op, method in ops],
        "model_bytes": len(model_bytes),
        "arena_bytes": arena,
        "input": _tensor_json(inp),
        "output": _tensor_json(out),
        "layers": [],
        "sources": ["model_data.cc", "tflm_model.h"],
    }
    artifacts.write_json(out_dir / "model_info.json", info)
    return info


def _data_source(model_bytes: bytes, name: str, digest: bytes) -> str:
    rows = ",\n".join("    " + ", ".join(f"0x{b:02x}" for b in model_bytes[i:i + 16])
                      for i in range(0, len(model_bytes), 16))
    return f"""/* {name}: the {len(model_bytes)}-byte .tflite, embedded for the TFLM interpreter.
 * Generated by drsn-edge firmware_gen/tflm_backend.py; do not edit. */
#include <stdint.h>

extern const unsigned char tflm_model_data[];
extern const unsigned int tflm_model_len;
extern const uint8_t tflm_model_sha256[32];

/* TFLM reads the flatbuffer in place; its buffers (weights) must be 16-byte aligned. */
alignas(16) const unsigned char tflm_model_data[{len(model_bytes)}] = {{
{rows}
}};
const unsigned int tflm_model_len = {len(model_bytes)}u;
/* SHA-256 of the .tflite: INFO reports it so the host knows which model the board runs. */
const uint8_t tflm_model_sha256[32] = {{{", ".join(f"0x{b:02x}" for b in digest)}}};
"""


def _config_header(name, ops, arena, inp, out) -> str:
    adds = "\n".join(f"    TF_LITE_ENSURE_STATUS(r.{method}());  /* {op} */" for op, method in ops)
    return f"""/* {name} for the TFLM back end (firmware_gen/harness/tflm_model.cc).
 * Generated by drsn-edge firmware_gen/tflm_backend.py; do not edit. */
#ifndef TFLM_MODEL_H
#define TFLM_MODEL_H

#include <stdint.h>

#include "model_api.h"
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

#define TFLM_MODEL_NAME "{name}"
/* The tensor arena: arena_used_bytes() measured on the board plus a margin (or, in the
 * image that does the measuring, a generous guess). */
#define TFLM_ARENA_BYTES {arena}u
#define TFLM_OP_COUNT {len(ops)}

extern const unsigned char tflm_model_data[];
extern const unsigned int tflm_model_len;
extern const uint8_t tflm_model_sha256[32];

/* Exactly the op types the model uses: nothing else is linked from the library. */
typedef tflite::MicroMutableOpResolver<TFLM_OP_COUNT> tflm_resolver;

static inline TfLiteStatus tflm_register_ops(tflm_resolver &r)
{{
{adds}
    return kTfLiteOk;
}}

#define TFLM_INPUT_INFO {_tensor_info(inp, "input")}
#define TFLM_OUTPUT_INFO {_tensor_info(out, "output")}

#endif /* TFLM_MODEL_H */
"""


def _io_tensors(model_bytes: bytes):
    model = tflm_oracle._model(model_bytes)
    sg = model.subgraphs[0]
    if len(sg.inputs) != 1 or len(sg.outputs) != 1:
        raise UserError(f"the model has {len(sg.inputs)} inputs and {len(sg.outputs)} outputs; "
                        f"the TFLM back end's harness takes exactly one of each (the compiled runtime, "
                        f"firmware.backend = \"compiled\", takes several outputs)")
    inp = tflm_oracle._tensor(model, sg, int(sg.inputs[0]))
    out = tflm_oracle._tensor(model, sg, int(sg.outputs[0]))
    for role, t in (("input", inp), ("output", out)):
        if t.type in ("FLOAT32", "UINT8"):
            first_last = ("a final DEQUANTIZE" if t.type == "FLOAT32" else "a final QUANTIZE") \
                if role == "output" else "a first QUANTIZE"
            raise UserError(f"the model's {role} is {t.type} ({first_last}); the TFLM back end's "
                            f"harness carries int8 {role}s: deploy it with the compiled runtime "
                            f"(firmware.backend = \"compiled\"), which takes a {t.type.lower()} {role}")
        if t.type != "INT8" or len(t.scales) == 0:
            raise UserError(f"the model's {role} is {t.type}, not a quantized INT8 tensor; "
                            f"deploy the fully-int8 .tflite from `make quantize`")
    return inp, out


def _dims(t) -> list[int]:
    dims = [int(d) for d in t.shape[1:]] or [1]   # no batch dimension, as in codegen
    return dims[-4:]


def _tensor_info(t, name: str) -> str:
    dims = _dims(t)
    padded = dims + [0] * (4 - len(dims))
    size = 1
    for d in t.shape:
        size *= int(d)
    return (f'{{"{name}", MODEL_TENSOR_ACTIVATION, {len(dims)}, '
            f'{{{", ".join(map(str, padded))}}}, {size}u, {float(t.scale)!r}f, {t.zero_point}}}')


def _tensor_json(t) -> dict:
    return {"shape": list(t.shape), "scale": float(t.scale), "zero_point": t.zero_point}


# --- building ----------------------------------------------------------------------------

def build(model_bytes: bytes, board: str, out_dir: str | Path, name: str = "model",
          tflm_lib: str = "", tflm_include: str = "", arena_margin: int = 1024,
          extra_sources=(), monitor: bool = True) -> dict:
    """Generate, measure the arena, compile and size the TFLM firmware for `board`.

    Returns {"board", "elf", "model", "size"} like firmware_gen.build.build; model holds
    "arena_used" (measured on the board) and "arena_bytes" (reserved = used + margin).
    extra_sources: more C files to link in (e.g. the boot self-test vector).
    monitor: size the harness's streaming monitor for the model's input, as the compiled
    back end does (False for a user's model); the serial frames always carry one input.
    """
    if arena_margin < ALIGN:
        raise UserError(f"firmware.arena_margin = {arena_margin}: use at least {ALIGN} bytes "
                        f"(an arena of exactly the measured size fails to allocate)")
    out_dir = Path(out_dir)
    board = boards.load(board)
    kit = locate(tflm_lib, tflm_include)
    check_library(kit.lib, board)
    methods = resolver_methods(kit.root)
    resolver_ops(model_bytes, methods, where=str(kit.root))
    gen = out_dir / "src"
    key = _cache_key(model_bytes, board, kit)
    defines = [*kit.defines, *harness_defines(model_bytes, monitor)]

    def image(arena: int, elf: Path) -> tuple[dict, Path]:
        info = generate(model_bytes, gen, name, arena, methods)
        return info, _compile(board, kit, gen, extra_sources, elf, defines)

    (used, extra), measured_with = _cached(out_dir, key), None
    for _attempt in range(2):
        if used is None:
            (used, extra), measured_with = _measure(model_bytes, board, out_dir, image)
        info, elf = image(used + arena_margin + extra, out_dir / "firmware.elf")
        # Boot the image that is kept, too: it proves the margin suffices, and it catches a
        # cached figure that no longer holds (then measured afresh rather than trusted).
        status, seen = _boot(board, elf)
        if measured_with is None and (status != MODEL_OK or seen != used):
            used = None
            continue
        break
    # arena_used_bytes() leaves out room the interpreter needs only while it allocates
    # (seen with a stack of ten FULLY_CONNECTED layers): then the margin doubles until the
    # image starts, up to the arena it was measured in, which did.
    while status == ARENA_TOO_SMALL and measured_with and used + arena_margin + extra < measured_with:
        extra = min(2 * (arena_margin + extra), measured_with - used) - arena_margin
        info, elf = image(used + arena_margin + extra, out_dir / "firmware.elf")
        status, _ = _boot(board, elf)
    if measured_with and status == MODEL_OK:
        artifacts.write_json(out_dir / CACHE_FILE, {"key": key, "arena_used": used, "extra": extra})
    if status == ARENA_TOO_SMALL:
        raise UserError(f"{elf} fails to allocate its tensors with an arena of "
                        f"{info['arena_bytes']} bytes ({used} measured + {arena_margin + extra} margin); "
                        f"raise firmware.arena_margin")
    if status != MODEL_OK:
        raise UserError(f"{elf} on {board.name}: model_init returned {status} "
                        f"({STATUS.get(status, 'unknown')})")
    info.update({"arena_used": used, "arena_margin": arena_margin + extra,
                 "arena_measured_with": measured_with or None, "tflm_lib": str(kit.lib),
                 "tflm_include": [str(d) for d in kit.include_dirs], "defines": kit.defines})
    artifacts.write_json(gen / "model_info.json", info)
    return {"board": board.name, "elf": elf, "model": info, "size": boards.size_report(elf)}


MODEL_OK = 0


def _measure(model_bytes, board: Board, out_dir: Path, image) -> tuple[tuple[int, int], int]:
    """Boot an image with a generous arena and read back what the interpreter used:
    ((bytes used, 0 extra margin), the arena it was measured in)."""
    arena = _generous_arena(model_bytes, board)
    probe = out_dir / "probe" / "firmware.elf"
    for _attempt in range(3):
        try:
            _info, elf = image(arena, probe)
            break
        except UserError as exc:
            needs, has = getattr(exc, "needs", None), getattr(exc, "has", None)
            if not needs or "RAM" not in needs or set(needs) != {"RAM"}:
                raise
            # Too generous for this board's RAM: give back exactly what overflowed.
            arena -= _round_up(needs["RAM"] - has["RAM"])
            if arena <= 0:
                raise
    else:
        raise UserError(f"cannot fit a TFLM image for {board.name} into its RAM")
    status, used = _boot(board, elf)
    if status == ARENA_TOO_SMALL:
        raise UserError(f"the model needs a TFLM tensor arena larger than the {arena} bytes "
                        f"{board.name} has room for; use a board with more RAM, a smaller "
                        f"model, or the compiled backend")
    if status != MODEL_OK:
        raise UserError(f"the TFLM image for {board.name} failed to start: model_init "
                        f"returned {status} ({STATUS.get(status, 'unknown')})")
    shutil.rmtree(probe.parent, ignore_errors=True)
    return (used, 0), arena


def _boot(board: Board, elf: Path) -> tuple[int, int]:
    """(model status, arena bytes used) from the INFO of `elf` booted in QEMU."""
    from runner.link import Device  # the host side of the protocol; only needed here
    with boards.Emulator(board, elf) as emu, Device(emu.url, timeout=5.0) as dev:
        info = dev.info()
    return info.model_status, info.arena_bytes


def _compile(board: Board, kit: Toolkit, gen: Path, extra_sources, elf: Path, defines) -> Path:
    sources = [gen / "model_data.cc", MODEL_SOURCE, *map(Path, extra_sources), *HARNESS_SOURCES]
    try:
        return boards.compile_firmware(board, sources, [gen, *HARNESS_INCLUDE_DIRS], elf,
                                       defines=defines, libs=[kit.lib],
                                       system_include_dirs=kit.include_dirs)
    except UserError as exc:
        raise _explain(exc, kit, board) from None


_UNDEFINED = re.compile(r"undefined reference to `([^']+)'")


def _explain(exc: UserError, kit: Toolkit, board: Board) -> UserError:
    """Say what a failed TFLM compile or link means, keeping the compiler's words."""
    text = str(exc)
    if getattr(exc, "needs", None):
        return exc
    if "uses VFP register arguments" in text:
        why = (f"{kit.lib} was built for another float ABI than {board.name}'s "
               f"({' '.join(board.cflags)})")
    elif (m := re.search(r"Register_(\w+)\(\)", " ".join(_UNDEFINED.findall(text)))):
        why = (f"{kit.lib} has no {m.group(1)} kernel, though its headers declare it: the "
               f"library and TFLM_INCLUDE come from different TFLM versions or builds")
    elif any("tflite::" in s or "Micro" in s for s in _UNDEFINED.findall(text)):
        why = (f"{kit.lib} lacks functions its headers at {kit.root} declare: the library and "
               f"TFLM_INCLUDE come from different TFLM versions or builds")
    elif (m := re.search(r"fatal error: ([\w./+-]+): No such file", text)):
        why = (f"{m.group(1)}, which TFLM's headers include, is not under TFLM_INCLUDE "
               f"({', '.join(map(str, kit.include_dirs))}); add the directory holding it, "
               f"separated by '{os.pathsep}'")
    elif "compiling" in text and "tflm_model" in text:
        why = (f"the TFLM headers at {kit.root} do not compile with this harness; use the "
               f"headers of the TFLM the library was built from")
    else:
        return exc
    return UserError(f"{why}; {HOW_TO_BUILD}. {text}")


# --- helpers -----------------------------------------------------------------------------

def _round_up(n: int) -> int:
    return -(-int(n) // ALIGN) * ALIGN


def _generous_arena(model_bytes: bytes, board: Board) -> int:
    """An arena surely big enough to measure in: every activation side by side, twice, plus
    room for TFLM's per-op and per-tensor bookkeeping; no more than the board can hold."""
    ops = tflm_oracle.read_operators(model_bytes)
    tensors = {t.index: t for op in ops for t in [*op.inputs, *op.outputs]
               if t is not None and t.data is None}
    activations = sum(_numel(t.shape) * _ITEMSIZE.get(t.type, 4) for t in tensors.values())
    estimate = 2 * activations + 1024 * len(ops) + 64 * len(tensors) + 32 * 1024
    room = board.ram_size - board.stack_size - RAM_RESERVE
    return _round_up(max(min(estimate, room), 4 * 1024))


_ITEMSIZE = {"INT8": 1, "UINT8": 1, "BOOL": 1, "INT16": 2, "INT32": 4, "FLOAT32": 4, "INT64": 8}


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= max(int(d), 1)
    return n


def _cached(out_dir: Path, key: str) -> tuple[int | None, int]:
    """(arena bytes used, extra margin the image needed) measured before, or (None, 0)."""
    try:
        data = json.loads((out_dir / CACHE_FILE).read_text())
    except (OSError, ValueError):
        return None, 0
    if data.get("key") != key or not isinstance(data.get("arena_used"), int):
        return None, 0
    return data["arena_used"], int(data.get("extra", 0))


def _cache_key(model_bytes: bytes, board: Board, kit: Toolkit) -> str:
    """Everything the measured arena depends on: the model, the board (its core and word
    size), the library's exact bytes, the headers' location, and the harness source."""
    h = hashlib.sha256()
    for part in (hashlib.sha256(model_bytes).hexdigest(), board.name, " ".join(board.cflags),
                 _file_digest(kit.lib), str(kit.root.resolve()), " ".join(kit.defines),
                 _file_digest(MODEL_SOURCE)):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _require(tool: str) -> str:
    if shutil.which(tool) is None:
        raise UserError(f"{tool} not found on PATH; run scripts/setup.sh, or sudo apt-get "
                        f"install {board_build.TOOLCHAIN_PACKAGES}")
    return tool


def _strips_error_strings(lib: Path) -> bool:
    """True when the library was built with TF_LITE_STRIP_ERROR_STRINGS (TFLM's release
    build): it then defines no MicroPrintf."""
    result = subprocess.run([_require(NM), "--defined-only", "-g", str(lib)],
                            capture_output=True, text=True)
    return "MicroPrintf" not in result.stdout


def _parse_readelf(text: str, default: str) -> list[tuple[str, dict]]:
    members: list[tuple[str, dict]] = []
    current = None
    for line in text.splitlines():
        if line.startswith("File: "):
            current = (line[6:].strip(), {})
            members.append(current)
            continue
        m = re.match(r"\s+(Machine|Class|Tag_\w+):\s+(.*)$", line)
        if m:
            if current is None:
                current = (default, {})
                members.append(current)
            current[1][m.group(1)] = m.group(2).strip().strip('"')
    return members


def _archive_attributes(lib: Path) -> list[tuple[str, dict]]:
    result = subprocess.run([_require(READELF), "-h", "-A", str(lib)],
                            capture_output=True, text=True)
    members = _parse_readelf(result.stdout, lib.name)
    if not members:
        raise UserError(f"{lib} holds no ELF objects that {READELF} can read "
                        f"({result.stderr.strip()[:200] or 'empty archive'}); point TFLM_LIB "
                        f"at libtensorflow-microlite.a from your TFLM build")
    return members


@lru_cache(maxsize=None)
def _board_attributes(board: Board) -> dict:
    """The attributes gcc gives an object built with the board's flags: what the library's
    members are compared with."""
    with tempfile.TemporaryDirectory() as tmp:
        src, obj = Path(tmp) / "probe.c", Path(tmp) / "probe.o"
        src.write_text("int drsn_probe;\n")
        subprocess.run([_require(board_build.GCC), *board.cflags, "-c", str(src), "-o", str(obj)],
                       check=True, capture_output=True)
        text = subprocess.run([_require(READELF), "-h", "-A", str(obj)],
                              capture_output=True, text=True).stdout
    return _parse_readelf(text, "probe.o")[0][1]


# Which architecture's code runs on which core (a core runs code for its own architecture
# and for the ones it extends).
_RUNS_ON = {
    "v6-M": {"v6-M", "v6S-M", "v7", "v7E-M", "v8-M.baseline", "v8-M.mainline", "v8.1-M.mainline"},
    "v6S-M": {"v6S-M", "v7", "v7E-M", "v8-M.baseline", "v8-M.mainline", "v8.1-M.mainline"},
    "v7": {"v7", "v7E-M", "v8-M.mainline", "v8.1-M.mainline"},
    "v7E-M": {"v7E-M", "v8-M.mainline", "v8.1-M.mainline"},
    "v8-M.baseline": {"v8-M.baseline", "v8-M.mainline", "v8.1-M.mainline"},
    "v8-M.mainline": {"v8-M.mainline", "v8.1-M.mainline"},
    "v8.1-M.mainline": {"v8.1-M.mainline"},
}


def _describe(attrs: dict) -> str:
    abi = "hard-float" if attrs.get("Tag_ABI_VFP_args") == "VFP registers" else "soft-float"
    fpu = attrs.get("Tag_FP_arch")
    return (f"{attrs.get('Tag_CPU_name') or attrs.get('Tag_CPU_arch')} "
            f"(Arm{attrs.get('Tag_CPU_arch')}, {abi}{', FPU ' + fpu if fpu else ', no FPU'})")


def _incompatibility(lib: dict, board: dict) -> str:
    """Why code with attributes `lib` cannot link into or run on a core like `board`."""
    arch, want = lib.get("Tag_CPU_arch"), board.get("Tag_CPU_arch")
    if lib.get("Tag_CPU_arch_profile") != board.get("Tag_CPU_arch_profile") or \
            want not in _RUNS_ON.get(arch, {arch}):
        return f"it is built for {_describe(lib)}, the board is {_describe(board)}"
    hard = lib.get("Tag_ABI_VFP_args") == "VFP registers"
    if hard != (board.get("Tag_ABI_VFP_args") == "VFP registers"):
        return (f"its float ABI is {'hard' if hard else 'soft'} (-mfloat-abi), the board's "
                f"{'soft' if hard else 'hard'}: built for {_describe(lib)}, the board is "
                f"{_describe(board)}")
    if lib.get("Tag_FP_arch") and not board.get("Tag_FP_arch"):
        return (f"it uses floating-point instructions ({lib['Tag_FP_arch']}) and the board's "
                f"core has no FPU")
    return ""
