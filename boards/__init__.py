"""Board support: board descriptions, firmware builds, and QEMU runs.

    from boards import available, load, compile_firmware, size_report, Emulator

The C side (boards/common/board.h) gives firmware one interface on every board: serial
port, work counter, exit code. Each board is a folder with a board.toml (see board.py).
"""

from boards.board import DEFAULT_BOARD, Board, available, flash_command, load
from boards.build import compile_firmware, size_report
from boards.emulator import Emulator, qemu_command

__all__ = ["DEFAULT_BOARD", "Board", "Emulator", "available", "compile_firmware",
           "flash_command", "load", "qemu_command", "size_report"]
