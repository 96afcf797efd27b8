"""The cycle estimate (firmware_gen/cycles/, firmware_gen/cycle_estimate.py): the C decoder
and timing table on single instructions (through ctypes), and the QEMU plugin on a
hand-written instruction sequence (tests/firmware/cycle_sequence.S) on every board, whose
estimated cycles must equal the sum from the published timing table exactly."""

import ctypes
import subprocess
from pathlib import Path

import pytest

import boards
from drsn_edge.errors import UserError
from firmware_gen import cycle_estimate as ce

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "tests" / "firmware"

# enum cm_class in firmware_gen/cycles/cycle_model.h
NONE, ALU, LOAD, STORE, LOAD_DUAL, STORE_DUAL, MULTI, BRANCH, COND_BRANCH, MAC, DIV, IT = range(12)
M3, M4, M55 = 3, 4, 55


@pytest.fixture(scope="module")
def model_lib(tmp_path_factory):
    lib = ctypes.CDLL(str(ce.build_model_library(tmp_path_factory.mktemp("cycle_model"))))
    lib.cm_cost.restype = ctypes.c_uint32
    lib.cm_cost.argtypes = [ctypes.c_uint32] * 5 + [ctypes.POINTER(ctypes.c_uint32)] * 2
    return lib


def cost(lib, hw1, hw2=0, core=M4, prev=NONE, in_it=0):
    cls, extra = ctypes.c_uint32(), ctypes.c_uint32()
    cycles = lib.cm_cost(hw1, hw2, core, prev, in_it, ctypes.byref(cls), ctypes.byref(extra))
    return cycles, cls.value, extra.value


# (encoding as GNU as writes it, core, previous class, IT state) -> (cycles, class, taken extra)
CASES = [
    ("ldmia.w r8, {r0-r3}", 0xE898, 0x000F, M4, NONE, 0, (5, MULTI, 0)),
    ("ldm r0, {r0-r3} (16-bit)", 0xC80F, 0, M4, NONE, 0, (5, MULTI, 0)),
    ("push {r0-r3}", 0xB40F, 0, M4, NONE, 0, (5, MULTI, 0)),
    ("pop {r0-r3, pc}", 0xBD0F, 0, M4, NONE, 0, (8, BRANCH, 0)),
    ("pop.w {r4-r11, pc}", 0xE8BD, 0x8FF0, M4, NONE, 0, (12, BRANCH, 0)),
    ("ldrd r4, r5, [r8, #16]", 0xE9D8, 0x4504, M4, NONE, 0, (3, LOAD_DUAL, 0)),
    ("strd r4, r5, [r8]", 0xE9C8, 0x4500, M4, NONE, 0, (3, STORE_DUAL, 0)),
    ("ldr.w r6, [r8] after LDRD", 0xF8D8, 0x6000, M4, LOAD_DUAL, 0, (2, LOAD, 0)),
    ("ldr.w r7, [r8, #4] after LDR", 0xF8D8, 0x7004, M4, LOAD, 0, (1, LOAD, 0)),
    ("str.w r6, [r8, #24] after LDR", 0xF8C8, 0x6018, M4, LOAD, 0, (1, STORE, 0)),
    ("str.w r7, [r8, #28] after STR", 0xF8C8, 0x701C, M4, STORE, 0, (2, STORE, 0)),
    ("ldr r0, [r1] (16-bit)", 0x6808, 0, M4, ALU, 0, (2, LOAD, 0)),
    ("ldrb r3, [r3, r0]", 0x5C1B, 0, M4, ALU, 0, (2, LOAD, 0)),
    ("strb r3, [r3, r0]", 0x541B, 0, M4, LOAD, 0, (1, STORE, 0)),
    ("ldr r0, [pc, #8]", 0x4802, 0, M4, NONE, 0, (2, LOAD, 0)),
    ("smlad r3, r0, r1, r3", 0xFB20, 0x3301, M4, NONE, 0, (1, MAC, 0)),
    ("mla r3, r0, r1, r3 (M4)", 0xFB00, 0x3301, M4, NONE, 0, (1, MAC, 0)),
    ("mla r3, r0, r1, r3 (M3)", 0xFB00, 0x3301, M3, NONE, 0, (2, MAC, 0)),
    ("mul.w r6, r4, r5 (M3)", 0xFB04, 0xF605, M3, NONE, 0, (1, MAC, 0)),
    ("smull r6, r7, r4, r5 (M4)", 0xFB84, 0x6705, M4, NONE, 0, (1, MAC, 0)),
    ("smull r6, r7, r4, r5 (M3)", 0xFB84, 0x6705, M3, NONE, 0, (5, MAC, 0)),
    ("smlal r6, r7, r4, r5 (M3)", 0xFBC4, 0x6705, M3, NONE, 0, (7, MAC, 0)),
    ("sdiv r6, r4, r5", 0xFB94, 0xF6F5, M4, NONE, 0, (12, DIV, 0)),
    ("udiv r6, r4, r5", 0xFBB4, 0xF6F5, M3, NONE, 0, (12, DIV, 0)),
    ("sxtb16 r0, r1", 0xFA2F, 0xF081, M4, NONE, 0, (1, ALU, 0)),
    ("movw r0, #4095", 0xF640, 0x70FF, M4, NONE, 0, (1, ALU, 0)),
    ("bne.n (conditional)", 0xD1FB, 0, M4, NONE, 0, (1, COND_BRANCH, 2)),
    ("bne.w (conditional)", 0xF47F, 0xAFFE, M4, NONE, 0, (1, COND_BRANCH, 2)),
    ("cbz r2", 0xB102, 0, M4, NONE, 0, (1, COND_BRANCH, 2)),
    ("b.n", 0xE000, 0, M4, NONE, 0, (3, BRANCH, 0)),
    ("b.w", 0xF000, 0xB800, M4, NONE, 0, (3, BRANCH, 0)),
    ("bl", 0xF7FF, 0xFF7A, M4, NONE, 0, (3, BRANCH, 0)),
    ("bx lr", 0x4770, 0, M4, NONE, 0, (3, BRANCH, 0)),
    ("bxeq lr (in an IT block)", 0x4770, 0, M4, NONE, 1, (1, COND_BRANCH, 2)),
    ("mov pc, r0", 0x4687, 0, M4, NONE, 0, (3, BRANCH, 0)),
    ("tbb [pc, r0]", 0xE8DF, 0xF000, M4, NONE, 0, (4, BRANCH, 0)),
    ("ldr.w pc, [sp], #4", 0xF85D, 0xFB04, M4, NONE, 0, (4, BRANCH, 0)),
    ("it eq", 0xBF08, 0, M4, NONE, 0, (1, IT, 0)),
    ("dmb (not a branch)", 0xF3BF, 0x8F5F, M4, NONE, 0, (1, ALU, 0)),
    ("vldr s0, [r0]", 0xED90, 0x0A00, M4, NONE, 0, (2, LOAD, 0)),
    ("vdiv.f32 s0, s1, s2", 0xEE80, 0x0A81, M4, NONE, 0, (14, DIV, 0)),
    ("vadd.i8 q0, q1, q2 (MVE on M55)", 0xEF02, 0x0844, M55, NONE, 0, (2, 13, 0)),
]


@pytest.mark.parametrize("what, hw1, hw2, core, prev, in_it, want", CASES,
                         ids=[c[0] for c in CASES])
def test_decoder_and_table_on_single_instructions(model_lib, what, hw1, hw2, core, prev,
                                                  in_it, want):
    assert cost(model_lib, hw1, hw2, core, prev, in_it) == want


# cycle_sequence.S, from the Cortex-M4 table (P = 2, SDIV/UDIV 12):
#   LDM 4 regs 5, LDRD 3, LDR 2, LDR pipelined 1, STR after LDR 1, STR after STR 2,
#   MOVS 1, MOVS 1                                                        = 16
#   loop x10: SMLAD 1 + SUBS 1 + BNE 1, BNE taken 9 times +2              = 48
#   CMP 1, BNE not taken 1, MOVS 1, MOVS 1, SDIV 12, UDIV 12, MUL 1, SMULL 1, B 3 = 33
#   CBZ taken 3, CMP 1, IT 1, MOVEQ 1                                     = 6
#   PUSH 4 regs 5, POP 4 regs 5                                           = 10
# and the same with the Cortex-M3 table: MLA 2 instead of SMLAD (+10), SMULL 5 (+4).
SEQUENCE_CYCLES = {"cortex-m4": 113, "cortex-m55": 113, "cortex-m3": 127}
# bx lr 3 (back from the first mark), MOVW 1, BL 3, then in board_cycle_mark MOV 1 + LDRB 2
EMPTY_CYCLES = 10


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    return ce.build_plugin(tmp_path_factory.mktemp("cycle_plugin"))


@pytest.mark.parametrize("board_name", ["mps2-an386", "netduinoplus2", "lm3s6965evb", "mps3-an547"])
def test_plugin_counts_a_hand_written_sequence_exactly(plugin, tmp_path, board_name):
    board = boards.load(board_name)
    elf = boards.compile_firmware(board, [FIRMWARE / "cycle_main.c", FIRMWARE / "cycle_sequence.S"],
                                  [], tmp_path / "cycles.elf")
    log = tmp_path / "cycles.txt"
    cmd = boards.qemu_command(board, elf, serial="null",
                              extra_args=ce.plugin_args(plugin, board, elf, log))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    marks, end = ce.parse_log(log.read_text())
    assert end is not None and end >= marks[-1][1]
    segs = ce.segments(marks)
    assert segs == [(1, EMPTY_CYCLES), (1, EMPTY_CYCLES + SEQUENCE_CYCLES[board.core])]


def test_segments_start_over_at_begin():
    marks = [(ce.MARK_BEGIN, 100), (0, 150), (1, 175), (ce.MARK_BEGIN, 1000), (ce.MARK_TOTAL, 1400)]
    assert ce.segments(marks) == [(0, 50), (1, 25), (ce.MARK_TOTAL, 400)]
    assert ce.parse_log("M 4095 100\nM 0 150\nEND 170\n") == ([(4095, 100), (0, 150)], 170)


def test_plugin_options_are_checked(plugin, tmp_path):
    board = boards.load("mps2-an386")
    elf = tmp_path / "no_marks.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-o", str(elf),
                    "-x", "c", "-"], input="void _start(void) { for (;;); }\n", text=True, check=True)
    with pytest.raises(UserError, match="no board_cycle_mark"):
        ce.plugin_args(plugin, board, elf, tmp_path / "log.txt")
    good = boards.compile_firmware(board, [FIRMWARE / "cycle_main.c", FIRMWARE / "cycle_sequence.S"],
                                   [], tmp_path / "cycles.elf")
    with pytest.raises(UserError, match="cannot hold a comma"):
        ce.plugin_args(plugin, board, good, tmp_path / "a,b.txt")
    odd = board.__class__.__new__(board.__class__)
    odd.__dict__.update(board.__dict__)
    object.__setattr__(odd, "core", "cortex-m7")
    with pytest.raises(UserError, match="no cycle table for core"):
        ce.cycle_model(odd)
