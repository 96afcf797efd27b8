"""The board layer: every board builds, boots in QEMU, talks over a binary-clean serial
link, counts instructions exactly and repeatably, and turns exits and crashes into exit
codes. The firmware under test is tests/firmware/echo.c (its header lists the commands)."""

import contextlib
import random
import struct
from pathlib import Path

import pytest
import serial

import boards
from boards import build as board_build
from drsn_edge.errors import UserError

BOARDS = boards.available()
SYSTICK_BOARDS = [name for name in BOARDS if boards.load(name).counter_driver == "systick"]
ECHO = Path(__file__).resolve().parent / "firmware" / "echo.c"
CXX_INIT = Path(__file__).resolve().parent / "firmware" / "cxx_init.cpp"
EXIT_ON_REQUEST = 7   # echo.c's 'x'
EXIT_FAULT = 3        # BOARD_EXIT_FAULT in boards/common/board.h

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=BOARDS)
def firmware(request, tmp_path_factory):
    board = boards.load(request.param)
    out = tmp_path_factory.mktemp(board.name) / "echo.elf"
    return board, boards.compile_firmware(board, [ECHO], [], out)


@contextlib.contextmanager
def booted(board, elf):
    """QEMU running elf, a serial link to it, the banner already checked."""
    with boards.Emulator(board, elf) as emu:
        link = serial.serial_for_url(emu.url, timeout=10)
        try:
            assert link.readline() == f"hello {board.name}\n".encode()
            yield emu, link
        finally:
            link.close()


def measure(link, iterations):
    link.write(b"c" + struct.pack("<I", iterations))
    line = link.readline()
    assert line.endswith(b"\n"), f"no count for {iterations} iterations (got {line!r})"
    return int(line)


def ns_per_tick(board):
    return 1e9 / board.counter_clock_hz


# --- board descriptions ------------------------------------------------------------------

def test_every_board_file_loads_with_a_consistent_memory_map():
    assert boards.DEFAULT_BOARD in BOARDS and len(BOARDS) >= 4
    for name in BOARDS:
        board = boards.load(name)
        assert board.name == name and board.qemu_machine
        assert board.flash_size > 0 and board.ram_size > board.stack_size > 0
        assert ("-mfloat-abi=hard" in board.cflags) == board.fpu
        assert board.flash_command or board.flash_note  # real hardware: how, or why not


def test_unknown_board_is_a_user_error_naming_the_known_boards():
    with pytest.raises(UserError) as info:
        boards.load("nope")
    assert "nope" in str(info.value)
    for name in BOARDS:
        assert name in str(info.value)


def test_flash_command_fills_in_the_image_or_says_why_not(monkeypatch, tmp_path):
    with pytest.raises(UserError, match="not supported"):
        boards.flash_command("mps2-an386", tmp_path / "fw.elf")
    monkeypatch.setattr(boards.board.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    assert boards.flash_command("netduinoplus2", tmp_path / "fw.elf") == [
        "st-flash", "--reset", "write", str(tmp_path / "fw.bin"), "0x08000000"]


def test_qemu_command_counts_instructions_and_exits_through_semihosting(tmp_path):
    cmd = boards.qemu_command("mps2-an386", tmp_path / "fw.elf", port=4321)
    assert cmd[:3] == ["qemu-system-arm", "-M", "mps2-an386"]
    assert cmd[cmd.index("-icount") + 1] == "shift=0"
    assert cmd[cmd.index("-semihosting-config") + 1] == "enable=on,target=native"
    assert cmd[cmd.index("-serial") + 1] == "tcp:127.0.0.1:4321,server=on,wait=on,nodelay=on"
    assert boards.qemu_command("lm3s6965evb", "fw.elf", serial="stdio")[-1] == "stdio"


# --- building ----------------------------------------------------------------------------

def test_image_fits_its_board_and_size_report_matches_the_binary(firmware):
    board, elf = firmware
    sizes = boards.size_report(elf)
    assert sizes["text"] > 0 and sizes["rodata"] > 0 and sizes["bss"] > 0
    assert sizes["stack"] == board.stack_size
    assert 0 < sizes["flash_bytes"] <= board.flash_size
    assert 0 < sizes["ram_bytes"] <= board.ram_size
    # The .bin is the flash contents: everything flash_bytes counts, plus alignment padding.
    assert 0 <= elf.with_suffix(".bin").stat().st_size - sizes["flash_bytes"] < 64
    assert elf.with_suffix(".map").is_file()


def test_image_too_big_for_the_board_names_region_sizes(tmp_path):
    hog = tmp_path / "hog.c"
    hog.write_text("#include \"board.h\"\n"
                   "const unsigned char table[300 * 1024] = {1};\n"
                   "static unsigned char scratch[80 * 1024];\n"
                   "int main(void) { volatile int i = 7; scratch[i] = table[i]; return scratch[i]; }\n")
    with pytest.raises(UserError) as info:
        boards.compile_firmware("lm3s6965evb", [hog], [], tmp_path / "hog.elf")
    message = str(info.value)
    assert "lm3s6965evb" in message
    assert "FLASH needs" in message and f"has {256 * 1024}" in message
    assert "RAM needs" in message and f"has {64 * 1024}" in message
    assert not (tmp_path / "hog.elf").exists()  # no half-built image left to trust


def test_missing_toolchain_is_a_user_error_pointing_to_setup(monkeypatch, tmp_path):
    monkeypatch.setattr(board_build.shutil, "which", lambda tool: None)
    with pytest.raises(UserError, match="scripts/setup.sh"):
        boards.compile_firmware("mps2-an386", [ECHO], [], tmp_path / "echo.elf")


# --- running -----------------------------------------------------------------------------

def test_echo_is_binary_transparent_and_exit_code_reaches_the_host(firmware):
    board, elf = firmware
    rng = random.Random(board.name)
    payload = bytes(range(256)) + bytes(rng.randrange(256) for _ in range(256))
    with booted(board, elf) as (emu, link):
        link.write(b"".join(b"e" + bytes([b]) for b in payload))
        assert link.read(len(payload)) == payload
        link.write(b"x")
        assert emu.wait(timeout=10) == EXIT_ON_REQUEST


def test_counter_measures_a_known_loop_identically_on_two_boots(firmware):
    board, elf = firmware
    loops = [0, 1_000, 1_000_000, 60_000_000]  # 60 M iterations = 120 M instructions
    runs = []
    for _ in range(2):
        with booted(board, elf) as (emu, link):
            link.write(b"u")
            assert link.readline() == b"instructions\n"
            runs.append([measure(link, n) for n in loops])
            link.write(b"q")
            assert emu.wait(timeout=10) == 0
    assert runs[0] == runs[1]
    counts = dict(zip(loops, runs[0]))
    tick = ns_per_tick(board)
    for n in loops[1:]:
        # The loop is 2 instructions per iteration; start/read add a few dozen instructions
        # (counts[0]), and the timer resolves one tick.
        assert abs(counts[n] - counts[0] - 2 * n) <= tick
        assert abs(counts[n] - 2 * n) <= 0.01 * 2 * n + 2 * tick
    assert counts[0] < 100


@pytest.mark.parametrize("name", SYSTICK_BOARDS)
def test_systick_counter_stays_exact_across_many_wraps(name, tmp_path):
    """A 4096-tick SysTick period makes a 20 M instruction loop wrap hundreds of times."""
    board = boards.load(name)
    elf = boards.compile_firmware(board, [ECHO], [], tmp_path / "echo.elf",
                                  defines=["BOARD_SYSTICK_RELOAD=0xFFFu"])
    n = 10_000_000
    wraps = 2 * n / (4096 * ns_per_tick(board))
    with booted(board, elf) as (emu, link):
        count = measure(link, n)
        link.write(b"q")
        assert emu.wait(timeout=10) == 0
    # Each wrap runs a handler of a few instructions, which the count rightly includes.
    assert 2 * n <= count <= 2 * n + wraps * 40 + 100


def test_hardfault_is_reported_on_the_serial_link_and_ends_the_run(firmware):
    board, elf = firmware
    with booted(board, elf) as (emu, link):
        link.write(b"f")
        lines = [link.readline() for _ in range(2)]
        # the fault ends QEMU with the board's fault code (wait gives None if it runs on)
        code = emu.wait(timeout=30)
    report = lines[1].decode()
    assert lines[0] == b"\n"
    assert report.startswith("FAULT HardFault exc=3 pc=0x")
    for field in ("lr=0x", "xpsr=0x", "cfsr=0x", "hfsr=0x", "FORCED", "INVSTATE"):
        assert field in report
    assert code == EXIT_FAULT


def test_emulator_is_stopped_when_the_block_fails(tmp_path):
    board = boards.load(boards.DEFAULT_BOARD)
    elf = boards.compile_firmware(board, [ECHO], [], tmp_path / "echo.elf")
    with pytest.raises(RuntimeError):
        with boards.Emulator(board, elf) as emu:
            raise RuntimeError("test body failed")
    assert emu.returncode is not None


def test_cxx_constructors_run_and_printf_reaches_the_uart(tmp_path):
    board = boards.load(boards.DEFAULT_BOARD)
    elf = boards.compile_firmware(board, [CXX_INIT], [], tmp_path / "cxx_init.elf")
    with boards.Emulator(board, elf) as emu:
        link = serial.serial_for_url(emu.url, timeout=10)
        assert link.readline() == b"ctor=42 sum=6 instructions\n"
        assert emu.wait(timeout=10) == 5  # main's return value becomes the exit code
        link.close()


# --- CPU placement of the emulator ------------------------------------------------------

multi_cpu = pytest.mark.skipif(
    not hasattr(__import__("os"), "sched_getaffinity") or len(__import__("os").sched_getaffinity(0)) < 2,
    reason="needs a Linux host with at least 2 CPUs")


@multi_cpu
def test_every_qemu_thread_runs_on_one_cpu(monkeypatch, firmware):
    """The UART link halves when QEMU's I/O and vCPU threads sit on different CPUs."""
    import os
    monkeypatch.delenv("DRSN_EDGE_QEMU_CPU", raising=False)
    board, elf = firmware
    with booted(board, elf) as (emu, link):
        pid = emu._process.pid
        masks = {tid: os.sched_getaffinity(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}
        assert len(masks) >= 2, "QEMU runs at least an I/O and a vCPU thread"
        assert all(len(mask) == 1 for mask in masks.values()), masks
        assert len(set(map(frozenset, masks.values()))) == 1, masks


def test_qemu_goes_to_the_least_busy_cpu_without_a_pinned_qemu(monkeypatch):
    from boards import emulator
    monkeypatch.delenv("DRSN_EDGE_QEMU_CPU", raising=False)
    monkeypatch.setattr(emulator.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setattr(emulator.os, "sched_setaffinity", lambda pid, cpus: None, raising=False)
    busy = iter([{0: 100, 1: 100, 2: 100}, {0: 104, 1: 101, 2: 100}])
    monkeypatch.setattr(emulator, "_cpu_busy", lambda: next(busy))
    monkeypatch.setattr(emulator, "_pinned_emulators", lambda: [2])
    assert emulator.pick_cpu() == 1      # 2 is idle but holds a QEMU; 0 is the busiest
    busy = iter([{0: 0, 1: 0, 2: 0}] * 2)
    monkeypatch.setattr(emulator, "_pinned_emulators", lambda: [])
    assert emulator.pick_cpu() == 2      # a tie: the highest-numbered CPU


@multi_cpu
def test_qemu_cpu_choice_can_be_set_or_turned_off(monkeypatch):
    import os
    from boards import emulator
    allowed = sorted(os.sched_getaffinity(0))
    monkeypatch.setenv("DRSN_EDGE_QEMU_CPU", "all")
    assert emulator.pick_cpu() is None
    monkeypatch.setenv("DRSN_EDGE_QEMU_CPU", str(allowed[-1]))
    assert emulator.pick_cpu() == allowed[-1]
    monkeypatch.setenv("DRSN_EDGE_QEMU_CPU", "4096")
    with pytest.raises(UserError, match=r"DRSN_EDGE_QEMU_CPU=4096: .* 'all'"):
        emulator.pick_cpu()
    monkeypatch.setenv("DRSN_EDGE_QEMU_CPU", "fast")
    with pytest.raises(UserError, match=r"DRSN_EDGE_QEMU_CPU=fast: not a CPU number"):
        emulator.pick_cpu()
    monkeypatch.delenv("DRSN_EDGE_QEMU_CPU")
    assert emulator.pick_cpu() in allowed


# --- baud rates --------------------------------------------------------------------------

@pytest.mark.parametrize("driver, clock, baud, registers, actual", [
    # STM32 USART at the 16 MHz HSI: 16x oversampling, BRR = clock / baud in 1/16 steps
    ("stm32", 16_000_000, 115200, {"BOARD_UART_BRR": 139, "BOARD_UART_OVER8": 0}, 16e6 / 139),
    ("stm32", 16_000_000, 921600, {"BOARD_UART_BRR": 17, "BOARD_UART_OVER8": 0}, 16e6 / 17),
    ("stm32", 16_000_000, 1_000_000, {"BOARD_UART_BRR": 16, "BOARD_UART_OVER8": 0}, 1e6),
    # too fast for 16x: 8x oversampling, 1.0 in 1/8 steps is mantissa 1, fraction 0
    ("stm32", 16_000_000, 2_000_000, {"BOARD_UART_BRR": 0x10, "BOARD_UART_OVER8": 1}, 2e6),
    ("stm32", 84_000_000, 921600, {"BOARD_UART_BRR": 91, "BOARD_UART_OVER8": 0}, 84e6 / 91),
    # PL011: clock / (16 baud) in 1/64 steps, 434/64 = 6 + 50/64
    ("pl011", 12_500_000, 115200, {"BOARD_UART_IBRD": 6, "BOARD_UART_FBRD": 50}, 50e6 / 434),
    ("pl011", 12_500_000, 500_000, {"BOARD_UART_IBRD": 1, "BOARD_UART_FBRD": 36}, 50e6 / 100),
    ("cmsdk", 25_000_000, 115200, {"BOARD_UART_BAUDDIV": 217}, 25e6 / 217),
    ("cmsdk", 25_000_000, 921600, {"BOARD_UART_BAUDDIV": 27}, 25e6 / 27),
    ("cmsdk", 25_000_000, 1_000_000, {"BOARD_UART_BAUDDIV": 25}, 1e6),
])
def test_uart_divisor_registers_and_actual_rate(driver, clock, baud, registers, actual):
    from boards import uart
    d = uart.divisor(driver, clock, baud)
    assert d.macros == registers
    assert d.actual_baud == pytest.approx(actual, rel=1e-12)
    assert abs(d.error) <= uart.TOLERANCE


@pytest.mark.parametrize("driver, clock, baud, why", [
    ("stm32", 16_000_000, 1_200_000, "2.6 % off"),             # 16e6 / 13 = 1,230,769
    ("stm32", 16_000_000, 3_000_000, "out of the divider's range"),
    ("pl011", 12_500_000, 921600, "out of the divider's range"),  # at most clock / 16
    ("cmsdk", 25_000_000, 2_000_000, "out of the divider's range"),
    ("cmsdk", 25_000_000, 10, "out of the divider's range"),     # BAUDDIV is 20 bits
])
def test_unreachable_baud_names_the_rates_the_uart_can_take(driver, clock, baud, why):
    from boards import uart
    with pytest.raises(ValueError) as err:
        uart.divisor(driver, clock, baud, "the test board")
    text = str(err.value)
    assert f"{baud:,} baud cannot be set on the test board: {why}" in text
    rates = uart.reachable(driver, clock)
    assert text.endswith(", ".join(f"{r:,}" for r in rates))
    assert baud not in rates and 115200 in rates


@pytest.mark.parametrize("name", BOARDS)
def test_image_at_its_fastest_common_rate_boots_and_echoes(name, tmp_path):
    """The divisor macros reach the driver (board_config.h) and an image built for the
    fastest usual rate the board's UART clock allows still runs (QEMU ignores the rate)."""
    import dataclasses
    from boards import uart
    board = boards.load(name)
    fastest = max(uart.reachable(board.uart_driver, board.uart_clock_hz))
    assert fastest >= 500_000
    fast = dataclasses.replace(board, uart_baud=fastest)
    elf = boards.compile_firmware(fast, [ECHO], [], tmp_path / "echo.elf")
    header = (tmp_path / "echo.build" / "board_config.h").read_text()
    d = uart.divisor(board.uart_driver, board.uart_clock_hz, fastest)
    for macro, value in d.macros.items():
        assert f"#define {macro} {value}u\n" in header
    with booted(fast, elf) as (emu, link):
        link.write(b"e\x00e\xffx")
        assert link.read(2) == b"\x00\xff"
        assert emu.wait(timeout=10) == EXIT_ON_REQUEST
