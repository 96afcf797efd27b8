"""Board descriptions: one `boards/<name>/board.toml` per board, read into a `Board`.

A board file says everything the rest of drsn-edge needs to know about a target: compiler
flags for its core, where flash and RAM are, which UART and timer drivers to build in (from
boards/common/), how QEMU emulates it, and how to flash the real thing. Adding a board is
adding a folder; nothing in Python names a board except DEFAULT_BOARD.
"""

from __future__ import annotations

import shlex
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from drsn_edge.errors import UserError

BOARDS_DIR = Path(__file__).resolve().parent
COMMON_DIR = BOARDS_DIR / "common"
DEFAULT_BOARD = "mps2-an386"

# The board layer's own C sources, always built in; the drivers come from the TOML.
COMMON_SOURCES = ("startup.c", "board.c", "syscalls.c")

# Debian package that provides each flash tool, for the "not installed" message.
FLASH_TOOL_PACKAGES = {"st-flash": "stlink-tools", "openocd": "openocd"}


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    core: str
    fpu: bool
    cflags: tuple[str, ...]
    core_clock_hz: int
    irq_count: int
    flash_origin: int
    flash_size: int
    ram_origin: int
    ram_size: int
    stack_size: int
    uart_driver: str
    uart_base: int
    uart_clock_hz: int
    uart_baud: int
    counter_driver: str
    counter_base: int
    counter_clock_hz: int
    qemu_machine: str
    qemu_args: tuple[str, ...]
    flash_tool: str
    flash_command: str
    flash_alternatives: tuple[str, ...]
    flash_note: str
    directory: Path

    @property
    def toml_path(self) -> Path:
        return self.directory / "board.toml"

    @property
    def sources(self) -> list[Path]:
        """C sources of the board layer for this board: common code, its two drivers,
        and whatever lives in the board's own folder (clock and pin set-up)."""
        common = [COMMON_DIR / name for name in COMMON_SOURCES]
        drivers = [COMMON_DIR / f"uart_{self.uart_driver}.c",
                   COMMON_DIR / f"counter_{self.counter_driver}.c"]
        return common + drivers + sorted(self.directory.glob("*.c"))

    @property
    def include_dirs(self) -> list[Path]:
        return [COMMON_DIR, self.directory]


# (Board field, TOML key, type). Optional keys have a default as a fourth item.
_SCHEMA = [
    ("name", "name", str),
    ("description", "description", str),
    ("core", "core", str),
    ("fpu", "fpu", bool),
    ("cflags", "cflags", list),
    ("core_clock_hz", "core_clock_hz", int),
    ("irq_count", "irq_count", int),
    ("flash_origin", "memory.flash_origin", int),
    ("flash_size", "memory.flash_size", int),
    ("ram_origin", "memory.ram_origin", int),
    ("ram_size", "memory.ram_size", int),
    ("stack_size", "memory.stack_size", int),
    ("uart_driver", "uart.driver", str),
    ("uart_base", "uart.base", int),
    ("uart_clock_hz", "uart.clock_hz", int),
    ("uart_baud", "uart.baud", int),
    ("counter_driver", "counter.driver", str),
    ("counter_base", "counter.base", int),
    ("counter_clock_hz", "counter.clock_hz", int),
    ("qemu_machine", "qemu.machine", str),
    ("qemu_args", "qemu.args", list, []),
    ("flash_tool", "flash.tool", str, ""),
    ("flash_command", "flash.command", str, ""),
    ("flash_alternatives", "flash.alternatives", list, []),
    ("flash_note", "flash.note", str, ""),
]


def available() -> list[str]:
    """Names of all boards, i.e. folders of boards/ that hold a board.toml."""
    return sorted(p.parent.name for p in BOARDS_DIR.glob("*/board.toml"))


def load(name: str | Board) -> Board:
    """The board called `name` (a Board is passed through unchanged)."""
    if isinstance(name, Board):
        return name
    known = available()
    if name not in known:
        raise UserError(f"unknown board {name!r}; known boards: {', '.join(known)} "
                        f"(each is described by boards/<name>/board.toml)")
    path = BOARDS_DIR / name / "board.toml"
    try:
        table = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"board file {path} is not valid TOML: {exc}") from None

    values = {}
    for field, key, kind, *default in _SCHEMA:
        node = table
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            if not default:
                raise UserError(f"board file {path} lacks {key}; add it (see "
                                f"boards/{DEFAULT_BOARD}/board.toml for an example)")
            node = default[0]
        # bool is an int in Python, but `fpu = 1` or `flash_size = true` is a typo.
        if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
            raise UserError(f"board file {path}: {key} should be a {kind.__name__}, "
                            f"got {node!r}")
        if kind is list:
            if not all(isinstance(item, str) for item in node):
                raise UserError(f"board file {path}: {key} should be a list of strings")
            node = tuple(node)
        values[field] = node
    board = Board(directory=path.parent, **values)

    if board.name != name:
        raise UserError(f"board file {path} says name = {board.name!r}; it must match "
                        f"its folder name {name!r}")
    for source in board.sources:
        if not source.is_file():
            raise UserError(f"board file {path} asks for {source.name}, which does not exist "
                            f"in {source.parent}; check uart.driver / counter.driver")
    return board


def flash_command(board: str | Board, elf: str | Path, check_tool: bool = True) -> list[str]:
    """The command that writes `elf` (or the .bin beside it) to the real board.

    check_tool=False skips the "is the tool installed" check (for --dry-run)."""
    board = load(board)
    if not board.flash_command:
        raise UserError(f"flashing a real {board.name} is not supported by drsn-edge: "
                        f"{board.flash_note}")
    tool = shlex.split(board.flash_command)[0]
    if check_tool and shutil.which(tool) is None:
        package = FLASH_TOOL_PACKAGES.get(tool, tool)
        raise UserError(f"{tool} (needed to flash {board.name}) is not installed; install it, "
                        f"e.g. sudo apt-get install {package}")
    elf = Path(elf)
    return shlex.split(board.flash_command.format(elf=shlex.quote(str(elf)),
                                                  bin=shlex.quote(str(elf.with_suffix(".bin")))))
