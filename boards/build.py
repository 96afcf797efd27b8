"""Compiling a firmware image for a board with arm-none-eabi-gcc, and measuring it.

`compile_firmware` builds the board layer (boards/common/ plus the board's folder) together
with the caller's sources. Next to the ELF it leaves:

    <stem>.elf   the image, written only when the whole build succeeded
    <stem>.bin   raw flash contents from the flash origin (for st-flash and the like)
    <stem>.map   the linker map: what ended up where, and why
    <stem>.build/
        board_config.h   addresses and clocks from the board's TOML, as C macros
        memory.ld        the board's MEMORY regions; includes boards/common/sections.ld
        *.o              one object per source
"""

from __future__ import annotations

import math
import os
import re
import shutil
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from drsn_edge.artifacts import atomic_path, write_text
from drsn_edge.errors import UserError

from boards.board import COMMON_DIR, Board, load
from boards import uart as uart_rates

GCC = "arm-none-eabi-gcc"
GXX = "arm-none-eabi-g++"
OBJCOPY = "arm-none-eabi-objcopy"
TOOLCHAIN_PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"
CXX_SUFFIXES = {".cc", ".cpp", ".cxx"}

COMMON_FLAGS = ["-g", "-Wall", "-Wextra", "-ffunction-sections", "-fdata-sections"]
C_FLAGS = ["-std=gnu11"]
CXX_FLAGS = ["-std=gnu++17", "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics"]


def compile_firmware(board: str | Board, sources, include_dirs, out_elf: str | Path,
                     defines=(), opt: str = "-O2", werror: bool = True,
                     libs=(), system_include_dirs=()) -> Path:
    """Build `sources` with the board layer into `out_elf` (and .bin, .map beside it).

    defines: "NAME" or "NAME=value" strings, passed as -D. werror=False lets third-party
    sources with warnings through; the board layer itself is always warning-free.
    libs: prebuilt static libraries (.a) linked after the objects, e.g. TFLite Micro.
    system_include_dirs: third-party headers, passed as -isystem so their warnings do not
    fail a -Werror build of our own sources.
    """
    board = load(board)
    out_elf = Path(out_elf)
    sources = [Path(s) for s in sources]
    for source in sources:
        if not source.is_file():
            raise UserError(f"firmware source {source} does not exist; check the path given "
                            f"to compile_firmware")
    libs = [Path(lib) for lib in libs]
    for lib in libs:
        if not lib.is_file():
            raise UserError(f"library {lib} does not exist; check the path given to "
                            f"compile_firmware")
    use_cxx = any(s.suffix in CXX_SUFFIXES for s in sources)
    _require_tools([GCC, OBJCOPY] + ([GXX] if use_cxx else []))

    work = out_elf.parent / f"{out_elf.stem}.build"
    work.mkdir(parents=True, exist_ok=True)
    write_text(work / "board_config.h", board_config_header(board))
    write_text(work / "memory.ld", memory_script(board))

    includes = [f"-I{d}" for d in [work, *board.include_dirs, *map(Path, include_dirs)]]
    includes += [f"-isystem{d}" for d in map(Path, system_include_dirs)]
    flags = [*board.cflags, opt, *COMMON_FLAGS, *includes, *(f"-D{d}" for d in defines)]
    jobs = [(src, work / f"{i:03d}-{src.stem}.o", src.suffix in CXX_SUFFIXES,
             werror or src in board.sources)
            for i, src in enumerate([*board.sources, *sources])]

    def compile_one(job):
        src, obj, cxx, strict = job
        cmd = [GXX if cxx else GCC, *flags, *(CXX_FLAGS if cxx else C_FLAGS),
               *(["-Werror"] if strict else []), "-c", str(src), "-o", str(obj)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise UserError(f"compiling {src} for {board.name} failed; fix the errors "
                            f"below and build again:\n{_tail(result.stderr)}")
        return obj

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        objects = list(pool.map(compile_one, jobs))

    map_file = out_elf.with_suffix(".map")
    with atomic_path(out_elf) as tmp_elf:
        cmd = [GXX if use_cxx else GCC, *board.cflags, "--specs=nano.specs", "-nostartfiles",
               "-Wl,--gc-sections", f"-Wl,-Map={map_file}",
               f"-L{work}", f"-L{COMMON_DIR}", "-Tmemory.ld",
               *map(str, objects), *map(str, libs), "-lm", "-o", str(tmp_elf)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise _link_error(board, out_elf, result.stderr)
    with atomic_path(out_elf.with_suffix(".bin")) as tmp_bin:
        subprocess.run([OBJCOPY, "-O", "binary", str(out_elf), str(tmp_bin)], check=True)
    return out_elf


def board_config_header(board: Board) -> str:
    """board_config.h: the TOML facts the C drivers need, as macros."""
    ratio = math.gcd(10**9, board.counter_clock_hz)
    uart = uart_divisor(board)
    lines = [
        f"/* Generated by boards/build.py from {board.toml_path.relative_to(COMMON_DIR.parent.parent)}; "
        f"do not edit. */",
        "#ifndef BOARD_CONFIG_H",
        "#define BOARD_CONFIG_H",
        "",
        f'#define BOARD_NAME "{board.name}"',
        f"#define BOARD_HAS_FPU {int(board.fpu)}",
        f"#define BOARD_CORE_CLOCK_HZ {board.core_clock_hz}u",
        f"#define BOARD_IRQ_COUNT {board.irq_count}",
        f"#define BOARD_FLASH_ORIGIN 0x{board.flash_origin:08X}u",
        "",
        f"#define BOARD_UART_BASE 0x{board.uart_base:08X}u",
        f"#define BOARD_UART_CLOCK_HZ {board.uart_clock_hz}u",
        f"#define BOARD_UART_BAUD {board.uart_baud}u",
        f"/* Divisor registers for that rate (boards/uart.py): {uart.actual_baud:,.0f} baud, "
        f"{100 * uart.error:+.2f} %. */",
        *(f"#define {k} {v}u" for k, v in uart.macros.items()),
        "",
        f"#define BOARD_COUNTER_BASE 0x{board.counter_base:08X}u",
        f"#define BOARD_COUNTER_HZ {board.counter_clock_hz}u",
        "/* Nanoseconds per counter tick, 1e9 / BOARD_COUNTER_HZ as a reduced fraction. */",
        f"#define BOARD_COUNTER_NS_NUM {10**9 // ratio}u",
        f"#define BOARD_COUNTER_NS_DEN {board.counter_clock_hz // ratio}u",
        "",
        "#endif /* BOARD_CONFIG_H */",
        "",
    ]
    return "\n".join(lines)


def uart_divisor(board: Board) -> uart_rates.Divisor:
    """The UART divisor for the board's baud rate; a UserError when it cannot be set."""
    try:
        return uart_rates.divisor(board.uart_driver, board.uart_clock_hz, board.uart_baud,
                                  board.name)
    except ValueError as exc:
        raise UserError(f"{exc} (firmware.baud, or uart.baud in {board.toml_path.name})") from None


def memory_script(board: Board) -> str:
    """memory.ld: the board's memory regions, then the shared section layout."""
    return (f"/* Generated by boards/build.py for {board.name}; do not edit. */\n"
            f"MEMORY\n"
            f"{{\n"
            f"    FLASH (rx)  : ORIGIN = 0x{board.flash_origin:08X}, LENGTH = 0x{board.flash_size:X}\n"
            f"    RAM   (rwx) : ORIGIN = 0x{board.ram_origin:08X}, LENGTH = 0x{board.ram_size:X}\n"
            f"}}\n"
            f"STACK_SIZE = 0x{board.stack_size:X};\n"
            f"INCLUDE sections.ld\n")


def size_report(elf: str | Path) -> dict[str, int]:
    """Bytes per kind of content, from the ELF's section headers.

    flash_bytes = text + rodata + data (initial values are stored in flash);
    ram_bytes = data + bss + stack (the reserved main stack; the heap is what is left).
    """
    sizes = dict.fromkeys(("text", "rodata", "data", "bss", "stack"), 0)
    for name, flags, kind, size in _alloc_sections(Path(elf)):
        if name == ".stack":
            sizes["stack"] += size
        elif flags & SHF_EXECINSTR:
            sizes["text"] += size
        elif kind == SHT_NOBITS:
            sizes["bss"] += size
        elif name == ".data" or (flags & SHF_WRITE and not name.endswith("_array")):
            sizes["data"] += size
        else:  # read-only data, unwind tables, constructor tables
            sizes["rodata"] += size
    sizes["flash_bytes"] = sizes["text"] + sizes["rodata"] + sizes["data"]
    sizes["ram_bytes"] = sizes["data"] + sizes["bss"] + sizes["stack"]
    return sizes


SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
SHT_NOBITS = 8


def _alloc_sections(elf: Path):
    """(name, flags, type, size) of each section that occupies memory on the target."""
    try:
        data = elf.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read firmware image {elf}: {exc.strerror}; build it first") from None
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise UserError(f"{elf} is not a 32-bit little-endian ELF file (an Arm firmware image)")
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
    headers = [struct.unpack_from("<IIIIIIIIII", data, shoff + i * shentsize) for i in range(shnum)]
    strtab_offset = headers[shstrndx][4]
    for name_offset, kind, flags, _addr, _offset, size, *_ in headers:
        if flags & SHF_ALLOC and size:
            end = data.index(b"\0", strtab_offset + name_offset)
            yield data[strtab_offset + name_offset:end].decode(), flags, kind, size


SHT_SYMTAB = 2


def symbol_sizes(elf: str | Path, names) -> dict[str, int | None]:
    """Size in bytes of each named global object in the ELF's symbol table (None when the
    image has no such symbol), e.g. the streaming monitor's ring buffer."""
    data = Path(elf).read_bytes()
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum, _ = struct.unpack_from("<HHH", data, 0x2E)
    headers = [struct.unpack_from("<IIIIIIIIII", data, shoff + i * shentsize) for i in range(shnum)]
    wanted = {n: None for n in names}
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in headers:
        if kind != SHT_SYMTAB or not entsize:
            continue
        strtab = headers[link][4]
        for at in range(offset, offset + size, entsize):
            st_name, _value, st_size, _i, _o, _shndx = struct.unpack_from("<IIIBBH", data, at)
            end = data.index(b"\0", strtab + st_name)
            sym = data[strtab + st_name:end].decode(errors="replace")
            if sym in wanted:
                wanted[sym] = st_size
    return wanted


def _require_tools(tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise UserError(f"{', '.join(missing)} not found on PATH; run scripts/setup.sh, or "
                        f"sudo apt-get install {TOOLCHAIN_PACKAGES}")


class DoesNotFit(UserError):
    """The image is larger than the board's memory: needs[region] = bytes the link wanted,
    has[region] = bytes the board has, for each region ("FLASH", "RAM") that overflowed."""

    def __init__(self, message: str, needs: dict[str, int], has: dict[str, int]):
        super().__init__(message)
        self.needs = needs
        self.has = has


_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


def _link_error(board: Board, elf: Path, stderr: str) -> UserError:
    overflows = {region: int(n) for region, n in _OVERFLOW.findall(stderr)}
    if overflows:
        parts, needs, has = [], {}, {}
        for region, over in overflows.items():
            size = board.flash_size if region == "FLASH" else board.ram_size
            needs[region], has[region] = size + over, size
            parts.append(f"{region} needs {size + over} bytes but {board.name} has {size} "
                         f"(over by {over})")
        return DoesNotFit(f"{elf.name} does not fit {board.name}: {'; '.join(parts)}. Make the "
                         f"model or its tensor arena smaller, or pick a board with more memory "
                         f"(see the .map file for what takes the space)", needs, has)
    if "nano.specs" in stderr or "-lc_nano" in stderr or "-lstdc++" in stderr:
        return UserError(f"the newlib C library for arm-none-eabi is missing ({_tail(stderr, 3)}); "
                         f"run scripts/setup.sh, or sudo apt-get install {TOOLCHAIN_PACKAGES}")
    return UserError(f"linking {elf.name} for {board.name} failed; fix the errors below and "
                     f"build again:\n{_tail(stderr)}")


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
