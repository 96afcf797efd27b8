"""Estimated Cortex-M cycles: the project's QEMU TCG plugin (firmware_gen/cycles/).

QEMU's -icount counts instructions. The plugin decodes every translated Thumb/Thumb-2
instruction from its bytes, charges it the cycles of a per-core timing table
(firmware_gen/cycles/cycle_model.h) and adds a conditional branch's pipeline refill when the
next block executed is not the fall-through. The firmware marks the stretches it measures
with board_cycle_mark(id) (boards/common/board.c: a one-byte load at flash origin + id); the
plugin logs "M <id> <cycles so far>" for each mark, and `segments` turns the log into cycles
per stretch: a mark with id BEGIN starts a stretch, any other mark ends the stretch since the
previous mark and starts the next.

The plugin is built here with the host C compiler (Debian package gcc), once per source
version, into build/tools/. These are estimates of a zero-wait-state core (see CYCLE_MODEL),
not measurements.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from drsn_edge.artifacts import atomic_path
from drsn_edge.errors import UserError

SOURCE_DIR = Path(__file__).resolve().parent / "cycles"
PLUGIN_SOURCES = [SOURCE_DIR / "cycle_plugin.c", SOURCE_DIR / "cycle_model.c"]
MODEL_SOURCES = [SOURCE_DIR / "cycle_model.c"]
HEADERS = [SOURCE_DIR / "cycle_model.h"]

# Mark ids (boards/common/board.h); layer ids are the layer indices.
MARK_BEGIN, MARK_READ, MARK_TOTAL, MARK_INFER, MARK_PROBE = 4095, 4094, 4093, 4092, 4091

CORES = {"cortex-m3": "m3", "cortex-m4": "m4", "cortex-m55": "m55"}

# The clock of the real chip each emulated board models (QEMU does not run at any clock):
# estimated latency = estimated cycles / this.
REAL_CLOCKS = {
    "mps2-an386": (25_000_000, "MPS2+ FPGA with the AN386 image: the core runs at 25 MHz"),
    "mps3-an547": (32_000_000, "MPS3 FPGA with the AN547 image: the core runs at 32 MHz"),
    "netduinoplus2": (168_000_000, "STM32F405RG at its maximum 168 MHz (flash wait states, "
                                   "which the estimate ignores, matter at this clock)"),
    "lm3s6965evb": (50_000_000, "LM3S6965 at its maximum 50 MHz"),
}

_TABLE_NOTES = {
    "m4": ("Arm Cortex-M4 processor instruction timings (Technical Reference Manual): data "
           "processing, MUL, MLA, SMLAD/SMLAL family, DSP SIMD 1; single load/store 2, 1 right "
           "after a single load (pipelined); LDRD/STRD 3; LDM/STM/PUSH/POP 1+N (+P if PC "
           "is loaded); branch taken 1+P, not taken 1; TBB/TBH 2+P; SDIV/UDIV 12; FPU "
           "VLDR/VSTR as loads, VLDM/VSTM 1+words, VDIV/VSQRT 14, VMLA/VFMA family 3, else 1"),
    "m3": ("Arm Cortex-M3 processor instruction timings (Technical Reference Manual): as the "
           "Cortex-M4 table, but MLA/MLS 2, long multiply 5 and long multiply-accumulate 7 "
           "(worst cases of the early-terminating multiplier); no DSP or FPU instructions"),
    "m55": ("no per-instruction table is published for the Cortex-M55: scalar code uses the "
            "Cortex-M4 table, each MVE (Helium) instruction counts 2 cycles (128-bit vector, "
            "two 32-bit beats per cycle) - a rougher estimate than the M3/M4 ones"),
}

ASSUMPTIONS = [
    "zero-wait-state memory, no caches, no bus contention, no interrupts",
    "P (pipeline refill after a taken branch) = 2 cycles: taken branch 3, not taken 1",
    "SDIV/UDIV 12 cycles (worst case of 2-12; the operands are not seen)",
    "a load or store pipelines (1 cycle) only directly after a single load in the same "
    "translated block; IT 1 cycle (folding not modelled); instructions an IT block skips "
    "are charged as executed",
    "conditional branch taken = the next block executed does not start at its fall-through",
]


def core_option(board) -> str:
    try:
        return CORES[board.core]
    except KeyError:
        raise UserError(f"no cycle table for core {board.core!r} of board {board.name}; "
                        f"the cycle estimate knows {', '.join(CORES)}") from None


def cycle_model(board) -> dict:
    """What the report says about how its cycles were estimated."""
    core = core_option(board)
    clock, clock_note = REAL_CLOCKS.get(board.name, (board.core_clock_hz, "the board's core clock"))
    return {"core": board.core, "table": _TABLE_NOTES[core], "assumptions": ASSUMPTIONS,
            "method": "QEMU TCG plugin (firmware_gen/cycles/cycle_plugin.c): each executed "
                      "Thumb instruction decoded from its bytes and charged from the table",
            "clock_hz": clock, "clock_note": clock_note,
            "estimate": True}


def _compiler() -> str:
    for cc in ("cc", "gcc"):
        path = shutil.which(cc)
        if path:
            return path
    raise UserError("no host C compiler (cc or gcc) to build the QEMU cycle plugin; install "
                    "Debian's gcc (scripts/setup.sh lists it)")


def _build_so(sources, dest_dir: Path, stem: str, hidden: bool) -> Path:
    h = hashlib.sha256(b"hidden" if hidden else b"")
    for src in [*sources, *HEADERS]:
        h.update(src.name.encode() + b"\0" + src.read_bytes())
    dest_dir = Path(dest_dir)
    so = dest_dir / f"{stem}-{h.hexdigest()[:12]}.so"
    if so.is_file():
        return so
    dest_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(so) as tmp:
        cmd = [_compiler(), "-O2", "-Wall", "-Wextra", "-Werror", "-std=c11", "-shared", "-fPIC",
               *(["-fvisibility=hidden"] if hidden else []), "-I", str(SOURCE_DIR), "-o", str(tmp),
               *map(str, sources)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise UserError(f"building {so.name} failed: {proc.stderr.strip()[-1500:]}")
    return so


def build_plugin(dest_dir: Path) -> Path:
    """The QEMU plugin (a host shared object), built once per source version."""
    return _build_so(PLUGIN_SOURCES, dest_dir, "cycle_plugin", hidden=True)


def build_model_library(dest_dir: Path) -> Path:
    """cycle_model.c alone as a host shared object (the tests call cm_cost with ctypes)."""
    return _build_so(MODEL_SOURCES, dest_dir, "cycle_model", hidden=False)


def mark_function(elf: Path) -> tuple[int, int] | None:
    """[start, end) of board_cycle_mark in `elf`, or None when the image has none."""
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == "board_cycle_mark":
            start = int(parts[0], 16) & ~1
            return start, start + int(parts[1], 16)
    return None


def plugin_args(plugin: Path, board, elf: Path, log: Path) -> list[str]:
    """QEMU arguments that load the plugin for `elf` on `board`, logging marks to `log`."""
    marks = mark_function(elf)
    if marks is None:
        raise UserError(f"{elf} has no board_cycle_mark; it was not built on the board layer")
    for path in (plugin, log):
        if "," in str(path):
            raise UserError(f"QEMU plugin options cannot hold a comma: rename {path}")
    return ["-plugin", f"{plugin},core={core_option(board)},out={log},marklo={marks[0]:x},"
                       f"markhi={marks[1]:x},markbase={board.flash_origin:x}"]


def parse_log(text: str) -> tuple[list[tuple[int, int]], int | None]:
    """The plugin's log: [(mark id, cycles so far)] and the total at exit (None if QEMU was
    killed before its exit)."""
    marks, end = [], None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "M":
            marks.append((int(parts[1]), int(parts[2])))
        elif len(parts) == 2 and parts[0] == "END":
            end = int(parts[1])
    return marks, end


def segments(marks: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """[(id, cycles since the previous mark)] for every mark but BEGIN (which starts over)."""
    out, last = [], None
    for mark_id, now in marks:
        if mark_id != MARK_BEGIN and last is not None:
            out.append((mark_id, now - last))
        last = now
    return out


def read_segments(log: Path) -> list[tuple[int, int]]:
    if not Path(log).is_file():
        raise UserError(f"the QEMU cycle plugin wrote no log ({log})")
    return segments(parse_log(Path(log).read_text())[0])
