"""The optimised kernels (conv1d, fused soft threshold, fused batch norm, fused |x| mean, same-
shape ADD/SUB) are bit-exact, in both builds: "portable" (the fallback of cores without the
DSP extension) and "dsp" (the SMLAD/SXTB16/SMMULR code, with dk_acle.h's C emulations of those
instructions on the host; the real instructions run on QEMU in test_firmware/test_benchmark).

Against the portable reference kernels (themselves proven against TFLM in test_kernels.py) on
randomized shapes and quantizations, and against the TFLM host runtime directly on converted
models: every CONV_2D of test_kernels' conv family through dk_conv1d_s8, and whole generated
DRSN models (fused kernels included) on random inputs, every layer compared.
"""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np
import pytest

import boards
from firmware_gen import codegen, hostlib, quant
from firmware_gen import tflm_oracle as oracle

VARIANTS = ("portable", "dsp")


@pytest.fixture(params=VARIANTS)
def variant(request):
    with hostlib.use_variant(request.param):
        yield request.param


def random_scale(rng, lo=0.01, hi=2.0):
    return float(np.float32(np.exp(rng.uniform(np.log(lo), np.log(hi)))))


def random_add(rng, act="NONE", s1=None, z1=None, s2=None, z2=None):
    s1 = s1 if s1 is not None else random_scale(rng)
    s2 = s2 if s2 is not None else random_scale(rng)
    z1 = int(rng.integers(-128, 128)) if z1 is None else z1
    z2 = int(rng.integers(-128, 128)) if z2 is None else z2
    so = random_scale(rng, 0.5 * max(s1, s2), 4 * max(s1, s2))
    zo = int(rng.integers(-128, 128))
    return quant.prepare_add(s1, z1, s2, z2, so, zo, act), (so, zo)


def int8(rng, shape, extremes=False):
    if extremes:
        return rng.choice(np.array([-128, -127, 0, 126, 127], np.int8), size=shape)
    return rng.integers(-128, 128, size=shape).astype(np.int8)


# --- the fast arithmetic itself ----------------------------------------------------------

def test_python_requantization_matches_the_c_primitive():
    rng = np.random.default_rng(1)
    xs = rng.integers(-2**31, 2**31, size=300)
    ms = rng.integers(2**30, 2**31, size=300)
    shifts = rng.integers(-31, 8, size=300)
    c = hostlib.multiply_by_quantized_multiplier(xs, ms, shifts)
    py = [quant.multiply_by_quantized_multiplier(int(x), int(m), int(s)) for x, m, s in zip(xs, ms, shifts)]
    assert np.array_equal(c, np.array(py))


def test_abs_table_equals_the_abs_kernel_for_every_input():
    rng = np.random.default_rng(2)
    for _ in range(20):
        si, so = random_scale(rng), random_scale(rng)
        p = quant.prepare_abs(si, int(rng.integers(-128, 128)), so if rng.random() < 0.8 else si,
                              int(rng.integers(-128, 128)))
        table = np.array(quant.abs_table(p), np.int8)
        assert np.array_equal(table, hostlib.abs_(hostlib.LUT_INPUTS.copy(), p))


@pytest.mark.parametrize("subtract", [False, True])
def test_same_shape_add_and_sub_equal_the_reference_kernels(variant, subtract):
    rng = np.random.default_rng(3 + subtract)
    for k in range(40):
        p, _ = random_add(rng, act="RELU" if k % 3 == 0 else "NONE")
        a, b = int8(rng, (7, 37), k % 5 == 0), int8(rng, (7, 37))
        ref = (hostlib.sub if subtract else hostlib.add)(a, b, p)
        assert np.array_equal(hostlib.add_same(a, b, p, subtract), ref), k


# --- conv1d ----------------------------------------------------------------------------------

def random_conv_case(rng):
    in_w, in_c = int(rng.integers(1, 40)), int(rng.integers(1, 20))
    out_c, k = int(rng.integers(1, 20)), int(rng.choice([1, 2, 3, 5, 8, 16]))
    stride = int(rng.choice([1, 2, 4]))
    padding = str(rng.choice(["SAME", "VALID"]))
    if padding == "VALID" and in_w < k:
        in_w = k + int(rng.integers(0, 5))
    w = rng.integers(-127, 128, size=(out_c, 1, k, in_c)).astype(np.int8)
    bias = rng.integers(-5000, 5000, size=out_c).astype(np.int32)
    scales = np.float32(np.exp(rng.uniform(np.log(1e-3), np.log(0.05), size=out_c)))
    q = quant.prepare_conv(random_scale(rng), int(rng.integers(-128, 128)), scales,
                           random_scale(rng, 0.05, 1.0), int(rng.integers(-128, 128)),
                           "RELU" if rng.random() < 0.5 else "NONE", num_channels=out_c)
    x = int8(rng, (1, 1, in_w, in_c), rng.random() < 0.2)
    return x, w, bias, q, stride, padding


def random_fast_case(rng, in_c=None, k=None, stride=None, out_c=None, in_w=None, padding=None,
                     relu_zp=None):
    """A case codegen.conv1d_fast accepts (dk_conv1d_s8_fast): stride * in_c a multiple of 4,
    every channel's effective scale below 1/2 (shift <= -1)."""
    stride = int(rng.choice([1, 2, 4])) if stride is None else stride
    if in_c is None:
        step = 4 // np.gcd(stride, 4)
        in_c = step * int(rng.integers(1, 20 // step + 1))
    k = int(rng.choice([1, 2, 3, 5, 8, 16])) if k is None else k
    out_c = int(rng.integers(1, 20)) if out_c is None else out_c
    padding = str(rng.choice(["SAME", "VALID"])) if padding is None else padding
    in_w = int(rng.integers(1, 40)) if in_w is None else in_w
    if padding == "VALID" and in_w < k:
        in_w = k + int(rng.integers(0, 5))
    w = rng.integers(-127, 128, size=(out_c, 1, k, in_c)).astype(np.int8)
    bias = rng.integers(-20000, 20000, size=out_c).astype(np.int32)
    s_in, s_out = random_scale(rng, 0.02, 1.0), random_scale(rng, 0.05, 1.0)
    eff = np.exp(rng.uniform(np.log(1e-5), np.log(0.45), size=out_c))      # shifts in [-17, -2]
    scales = np.float32(eff * s_out / s_in)
    z_out = int(rng.integers(-128, 128))
    act = "NONE"
    if relu_zp is not None or rng.random() < 0.3:
        act, z_out = "RELU", (relu_zp if relu_zp is not None else int(rng.choice([-128, z_out])))
    q = quant.prepare_conv(s_in, int(rng.integers(-128, 128)), scales, s_out, z_out, act,
                           num_channels=out_c)
    x = int8(rng, (1, 1, in_w, in_c), rng.random() < 0.2)
    assert codegen.conv1d_fast(in_c, stride, codegen.small_accumulators(w, bias, q), q)
    return x, w, bias, q, stride, padding


def test_conv1d_fast_equals_the_reference_conv_on_random_shapes(variant):
    """dk_conv1d_s8_fast: odd and even channel counts and block widths, in_c = 1, kernel 1,
    strides 1, 2, 4, SAME and VALID, 4 to 320 taps."""
    rng = np.random.default_rng(17)
    cases = [random_fast_case(rng) for _ in range(50)]
    cases += [random_fast_case(rng, in_c=1, k=16, stride=4, out_c=16, in_w=64, padding="SAME"),  # stem
              random_fast_case(rng, in_c=16, k=1, stride=2, out_c=32, in_w=20, padding="VALID"),  # 1x1
              random_fast_case(rng, in_c=4, k=1, stride=1, out_c=3, in_w=7),        # 4 taps
              random_fast_case(rng, in_c=64, k=3, stride=1, out_c=5, in_w=9),       # 192 taps
              random_fast_case(rng, in_c=1, k=3, stride=4, out_c=1, in_w=13),       # 1 channel
              random_fast_case(rng, in_c=8, k=5, stride=1, out_c=6, in_w=11, relu_zp=-20)]
    for case, (x, w, bias, q, stride, padding) in enumerate(cases):
        ref = hostlib.conv(x, w, bias, q, (1, stride), padding)
        for block in (None, 2, 4, 16):
            got = hostlib.conv1d(x, w, bias, q, stride, padding, block=block)
            assert np.array_equal(got, ref), (case, x.shape, w.shape, stride, padding, block)


def test_conv1d_equals_the_reference_conv_on_random_shapes(variant):
    rng = np.random.default_rng(5)
    for case in range(60):
        x, w, bias, q, stride, padding = random_conv_case(rng)
        ref = hostlib.conv(x, w, bias, q, (1, stride), padding)
        for small, block in ((None, None), (False, 2), (None, 8)):   # generator's choices and others
            got = hostlib.conv1d(x, w, bias, q, stride, padding, small_acc=small, block=block)
            assert np.array_equal(got, ref), (case, x.shape, w.shape, stride, padding, block)


def test_conv1d_scratch_size_is_what_the_generator_reserves():
    for in_c, k, stride in [(1, 16, 4), (16, 3, 1), (32, 3, 2), (64, 1, 2), (3, 5, 1)]:
        block = codegen.conv1d_block(in_c, k, stride)
        assert block in codegen.CONV1D_BLOCKS
        assert (hostlib.conv1d_scratch_bytes(in_c, k, stride, block)
                == codegen.conv1d_scratch_bytes(in_c, k, stride, block))
    assert codegen.conv1d_block(16, 3, 1) == 16 and codegen.conv1d_block(64, 3, 1) < 16


def test_pack_conv1d_layout():
    w = np.arange(3 * 1 * 2 * 3, dtype=np.int8).reshape(3, 1, 2, 3)   # 3 channels, 6 taps -> 8
    packed = codegen.pack_conv1d(w, 8)
    # pair 0: channel 0 taps 0 2 1 3, channel 1 taps 0 2 1 3, channel 0 taps 4 6 5 7 ...
    assert packed[:8].tolist() == [0, 2, 1, 3, 6, 8, 7, 9]
    assert packed[8:16].tolist() == [4, 0, 5, 0, 10, 0, 11, 0]
    # pair 1: channel 2 and a zero channel
    assert packed[16:24].tolist() == [12, 14, 13, 15, 0, 0, 0, 0]


def test_pack_conv1d_wide_and_fast_layouts():
    w = np.arange(3 * 1 * 2 * 4, dtype=np.int8).reshape(3, 1, 2, 4) - 12   # 3 channels, 8 taps
    wide = codegen.pack_conv1d(w, 8, wide=True)
    assert wide.dtype == np.int16 and wide.tolist() == codegen.pack_conv1d(w, 8).astype(np.int16).tolist()
    q = quant.ChannelQuant((1 << 30, 1 << 30, 1 << 30), (-1, -2, -3), True, 5, -7, 0,
                           quant.Activation(-128, 127))
    rec = codegen.pack_conv1d_fast(w, np.array([10, -20, 30], np.int32), q, 8).reshape(2, -1)
    assert rec.shape == (2, 4 + 2 * 8 + 12)
    words = lambda r, a, b: r[a:b].astype("<i2").view("<i4").tolist()
    # bias + input_offset * sum(w), times 2: sums -68, -4, 60
    assert words(rec[0], 0, 4) == [2 * (10 + 5 * -68), 2 * (-20 + 5 * -4)]
    assert words(rec[1], 0, 4) == [2 * (30 + 5 * 60), 0]
    assert rec[0, 4:20].tolist() == (2 * wide[:16]).tolist()
    # per channel: multiplier, rounding 2^(e-1) + (zp << e), e
    assert words(rec[0], 20, 26) == [1 << 30, 1 + (-7 << 1), 1]
    assert words(rec[0], 26, 32) == [1 << 30, 2 + (-7 << 2), 2]
    assert words(rec[1], 20, 26) == [1 << 30, 4 + (-7 << 3), 3]
    assert words(rec[1], 26, 32) == [0, 1 + (-7 << 1), 1]        # the padding channel
    assert codegen.conv1d_wide(16, 1) and codegen.conv1d_wide(1, 4) and not codegen.conv1d_wide(3, 1)


def test_random_conv_cases_cover_every_conv1d_variant():
    rng = np.random.default_rng(5)
    kinds = set()
    for case in range(60):
        x, w, bias, q, stride, padding = random_conv_case(rng)
        in_c = w.shape[3]
        fast = codegen.conv1d_fast(in_c, stride, codegen.small_accumulators(w, bias, q), q)
        # int8 weights also for columns on groups of 4 whose bounds rule the fast path out
        kinds.add("fast" if fast else "int8, aligned" if codegen.conv1d_wide(in_c, stride) else "int8")
    assert kinds == {"fast", "int8, aligned", "int8"}


@pytest.mark.parametrize("seed", (11, 29))
def test_conv1d_matches_tflm_on_converted_conv1d_layers(variant, seed):
    from tests.test_kernels import PADDING, input_draws, model_for
    model = model_for("conv", seed)
    ops = [op for op in oracle.read_operators(model) if codegen.conv1d_geometry(op) is not None]
    assert len(ops) >= 8
    for draw in list(input_draws(model, seed))[:2]:
        tensors = oracle.run_capture(model, draw)
        for op in ops:
            x, w = op.inputs[0], op.inputs[1]
            b = op.inputs[2].data if len(op.inputs) > 2 and op.inputs[2] is not None else None
            y = op.outputs[0]
            q = quant.prepare_conv(x.scale, x.zero_point, w.scales, y.scale, y.zero_point,
                                   int(op.options.get("fusedActivationFunction", 0)), w.shape[0])
            got = hostlib.conv1d(tensors[x.index], w.data, b, q, op.options["strideW"],
                                 PADDING[op.options["padding"]])
            assert np.array_equal(got, tensors[y.index]), op.index


# --- conv1d on the boards: the real instructions ----------------------------------------------

CONV1D_CASES_MAIN = Path(__file__).resolve().parent / "firmware" / "conv1d_cases.c"


def board_conv1d_cases():
    """Random general and fast cases, the default DRSN's shapes (stem, 1x1 projections, long
    taps), odd widths and channel counts, generator-chosen and narrow blocks."""
    rng = np.random.default_rng(23)
    cases = [random_conv_case(rng) for _ in range(24)] + [random_fast_case(rng) for _ in range(30)]
    cases += [random_fast_case(rng, in_c=1, k=16, stride=4, out_c=16, in_w=64, padding="SAME"),
              random_fast_case(rng, in_c=16, k=1, stride=2, out_c=32, in_w=20, padding="VALID"),
              random_fast_case(rng, in_c=32, k=1, stride=2, out_c=7, in_w=9, padding="SAME"),
              random_fast_case(rng, in_c=4, k=1, stride=1, out_c=3, in_w=7),
              random_fast_case(rng, in_c=64, k=3, stride=1, out_c=5, in_w=9),
              random_fast_case(rng, in_c=16, k=3, stride=1, out_c=16, in_w=33, padding="SAME"),
              random_fast_case(rng, in_c=1, k=3, stride=4, out_c=1, in_w=13),
              random_fast_case(rng, in_c=8, k=5, stride=1, out_c=6, in_w=11, relu_zp=-20)]
    blocks = (None, 2, 4, 16)
    cases = [(*case, blocks[i % len(blocks)], False) for i, case in enumerate(cases)]
    # size mode: every fast case again on int8-weight records (dk_c1f_sweep8)
    return cases + [(*c[:6], c[6], True) for c in cases[24:]]


def _c_array(ctype, name, values):
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    rows = ",\n    ".join(", ".join(flat[i:i + 24]) for i in range(0, len(flat), 24))
    return f"static const {ctype} {name}[{max(len(flat), 1)}] __attribute__((aligned(16))) = {{\n    {rows or '0'}\n}};\n"


def write_conv1d_cases(directory: Path, cases) -> Path:
    """conv1d_cases_data.c and conv1d_cases_sizes.h for tests/firmware/conv1d_cases.c: each
    case packed and parametrised exactly as the generator does it (hostlib.conv1d), with
    the reference conv kernel's output."""
    data, rows = ["#include <stddef.h>", "#include <stdint.h>", '#include "dk.h"', ""], []
    max_out = max_scratch = 0
    for i, (x, w, bias, q, stride, padding, block, *size) in enumerate(cases):
        weights8 = bool(size and size[0])
        in_w, in_c = x.shape[2], x.shape[3]
        out_c, _, k, _ = w.shape
        out_w, pad = quant.conv_output_size(in_w, k, stride, 1, padding)
        taps = -(-(k * in_c) // 4) * 4
        small = codegen.small_accumulators(w, bias, q)
        block = codegen.conv1d_block(in_c, k, stride) if block is None else block
        fast = codegen.conv1d_fast(in_c, stride, small, q)
        data.append(_c_array("int8_t", f"c{i}_in", x))
        data.append(_c_array("int8_t", f"c{i}_exp", hostlib.conv(x, w, bias, q, (1, stride), padding)))
        if fast:
            data.append(_c_array("int16_t", f"c{i}_packed", codegen.pack_conv1d_fast(w, bias, q, taps, weights8)))
            extra = "NULL, NULL, NULL, 0"
        else:
            data.append(_c_array("int8_t", f"c{i}_packed", codegen.pack_conv1d(w, taps)))
            data.append(_c_array("int32_t", f"c{i}_bias", bias))
            data.append(_c_array("int32_t", f"c{i}_mult", q.multipliers))
            data.append(_c_array("int32_t", f"c{i}_shift", q.shifts))
            extra = f"c{i}_bias, c{i}_mult, c{i}_shift, {int(q.per_channel)}"
        params = (f"{{{q.input_offset}, {q.output_offset}, {in_w}, {in_c}, {out_w}, {out_c}, {k}, {stride}, "
                  f"{pad}, {taps}, {{{q.activation.min}, {q.activation.max}}}, {int(small)}, {block}, "
                  f"{int(weights8 and fast)}}}")
        rows.append(f"    {{{params}, {int(fast)}, c{i}_in, c{i}_packed, {extra}, c{i}_exp, {out_w * out_c}}},")
        max_out = max(max_out, out_w * out_c)
        max_scratch = max(max_scratch, hostlib.conv1d_scratch_bytes(in_c, k, stride, block))
    data += ["typedef struct {", "    dk_conv1d_params p;", "    int32_t fast;", "    const int8_t *input;",
             "    const void *packed;", "    const int32_t *bias;", "    const int32_t *multiplier;",
             "    const int32_t *shift;", "    int32_t per_channel;", "    const int8_t *expected;",
             "    int32_t out_bytes;", "} conv1d_case;", "",
             "const conv1d_case conv1d_cases[] = {", *rows, "};",
             f"const uint32_t conv1d_case_count = {len(cases)}u;", ""]
    (directory / "conv1d_cases_sizes.h").write_text(
        f"#define CASES_MAX_OUT {max_out}\n#define CASES_MAX_SCRATCH {max_scratch}\n")
    path = directory / "conv1d_cases_data.c"
    path.write_text("\n".join(data))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("board", boards.available())
def test_conv1d_kernels_are_bit_exact_on_every_board(board, tmp_path):
    """The same cases as on the host, on QEMU: the DSP boards run dk_c1f_sweep's assembly
    (mps2-an386, netduinoplus2: Cortex-M4; mps3-an547: Cortex-M55), lm3s6965evb the C."""
    cases = board_conv1d_cases()
    assert {bool(codegen.conv1d_fast(c[1].shape[3], c[4], codegen.small_accumulators(c[1], c[2], c[3]), c[3]))
            for c in cases} == {True, False}
    data = write_conv1d_cases(tmp_path, cases)
    elf = boards.compile_firmware(board, [CONV1D_CASES_MAIN, data, *codegen.runtime_sources()],
                                  [tmp_path, *codegen.include_dirs()], tmp_path / "conv1d_cases.elf")
    log = tmp_path / "uart.txt"
    proc = subprocess.run(boards.qemu_command(board, elf, serial=f"file:{log}"), capture_output=True,
                          text=True, timeout=120)
    text = log.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.startswith("CASE ")]
    failed = [line for line in lines if not line.endswith(" ok")]
    assert len(lines) == len(cases) and not failed, (failed, text[-2000:])
    assert "END 0" in text and proc.returncode == 0, text[-2000:]


# --- fused element-wise kernels ---------------------------------------------------------------

def test_fused_soft_threshold_equals_the_five_reference_kernels(variant):
    rng = np.random.default_rng(7)
    for case in range(40):
        L, C = int(rng.integers(1, 30)), int(rng.integers(1, 20))
        sr, zr = random_scale(rng), int(rng.integers(-128, 128))
        st, zt = random_scale(rng, 0.001, 1.0), int(rng.integers(-128, 0))
        r, tau = int8(rng, (L, C), case % 7 == 0), int8(rng, (C,))
        add, (sa, za) = random_add(rng, s1=sr, z1=zr, s2=st, z2=zt)
        sub, (ss, zs) = random_add(rng, "RELU", s1=sr, z1=zr, s2=st, z2=zt)
        total, (sy, zy) = random_add(rng, s1=ss, z1=zs, s2=sa, z2=za)
        sc = int8(rng, (L, C))
        res, _ = random_add(rng, s1=sy, z1=zy)
        min_value = int(np.clip(za + rng.integers(-3, 4), -128, 127))
        a = hostlib.add(r, tau[None], add)
        m = hostlib.minimum(a, np.full_like(a, min_value))
        s = hostlib.sub(r, tau[None], sub)
        y = hostlib.add(s, m, total)
        z = hostlib.add(y, sc, res)
        for stage, want in enumerate((a, m, s, y, z)):
            got = hostlib.shrink(r, tau, sc, add, sub, total, res, min_value, stage=stage)
            assert np.array_equal(got, want), (case, stage)
        # without a shortcut, and with the sum's operands the other way round
        total2, _ = random_add(rng, s1=sa, z1=za, s2=ss, z2=zs)
        y2 = hostlib.add(m, s, total2)
        got = hostlib.shrink(r, tau, None, add, sub, total2, None, min_value, sum_s_first=False, stage=4)
        assert np.array_equal(got, y2), case


def test_fused_soft_threshold_one_sided_form_equals_the_reference_kernels(variant):
    """The DRSN's own quantization (tau's zero point its minimum, MINIMUM against the ADD's zero
    point, ReLU on the SUB): the kernel's one-sided loop (ew_fused.h, dk_shrink_split), which
    computes only a or s per element, against the five reference kernels; r spans all of int8."""
    rng = np.random.default_rng(11)
    for case in range(30):
        L, C = int(rng.integers(1, 40)), int(rng.integers(1, 20))
        sr, zr = random_scale(rng), int(rng.integers(-128, 128))
        st = random_scale(rng, 0.001, 1.0)
        r = np.tile(np.arange(-128, 128, dtype=np.int8), (L * C + 255) // 256)[:L * C]
        r = rng.permutation(r).reshape(L, C)
        tau = int8(rng, (C,), case % 5 == 0)
        add, (sa, za) = random_add(rng, s1=sr, z1=zr, s2=st, z2=-128)
        sub, (ss, zs) = random_add(rng, "RELU", s1=sr, z1=zr, s2=st, z2=-128)
        total, (sy, zy) = random_add(rng, s1=ss, z1=zs, s2=sa, z2=za)
        sc = int8(rng, (L, C))
        res, _ = random_add(rng, s1=sy, z1=zy)
        m = hostlib.minimum(hostlib.add(r, tau[None], add), np.full((L, C), za, np.int8))
        y = hostlib.add(hostlib.sub(r, tau[None], sub), m, total)
        z = hostlib.add(y, sc, res)
        assert np.array_equal(hostlib.shrink(r, tau, sc, add, sub, total, res, za, stage=4), z), case
        assert np.array_equal(hostlib.shrink(r, tau, None, add, sub, total, None, za, stage=4), y), case


def test_fused_batch_norm_equals_mul_then_add(variant):
    rng = np.random.default_rng(8)
    for case in range(40):
        L, C = int(rng.integers(1, 30)), int(rng.integers(1, 20))
        sx, zx = random_scale(rng), int(rng.integers(-128, 128))
        sk, zk = random_scale(rng, 0.001, 0.1), int(rng.integers(-128, 128))
        su = random_scale(rng, 0.2 * sx * sk * 128, 2 * sx * sk * 128)
        zu = int(rng.integers(-128, 128))
        mul = quant.prepare_mul(sx, zx, sk, zk, su, zu)
        add, _ = random_add(rng, "RELU" if case % 2 else "NONE", s1=su, z1=zu)
        x, scale, shift = int8(rng, (L, C), case % 5 == 0), int8(rng, (C,)), int8(rng, (C,))
        u = hostlib.mul(x, scale[None], mul)
        y = hostlib.add(u, shift[None], add)
        assert np.array_equal(hostlib.channel_affine(x, scale, shift, mul, add, stage=0), u), case
        assert np.array_equal(hostlib.channel_affine(x, scale, shift, mul, add, stage=1), y), case


def test_fused_abs_mean_equals_abs_then_mean(variant):
    rng = np.random.default_rng(9)
    for case in range(40):
        L, C = int(rng.integers(1, 300)), int(rng.integers(1, 20))
        si, zi = random_scale(rng), int(rng.integers(-128, 128))
        sa = si if case % 4 == 0 else random_scale(rng)
        pa = quant.prepare_abs(si, zi, sa, -128)
        pm = quant.prepare_mean(sa, -128, random_scale(rng, sa / 4, sa), int(rng.integers(-128, 0)), L)
        x = int8(rng, (1, L, C), case % 6 == 0)
        a = hostlib.abs_(x, pa)
        want = hostlib.mean(a, [1], pm, keep_dims=False).reshape(-1)
        got_a, got = hostlib.abs_mean(x[0], pa, pm)
        assert np.array_equal(got_a, a[0]) and np.array_equal(got, want), case


# --- whole generated models vs TFLM, both builds ---------------------------------------------

EMIT = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.POINTER(ctypes.c_int8), ctypes.c_uint32,
                        ctypes.c_void_p)


def compile_model(model: bytes, out, variant: str, optimize: str = "speed"):
    info = codegen.generate(model, out, name="m", optimize=optimize)
    lib = out / f"libm-{variant}.so"
    srcs = [out / "model.c", out / "model_data.c", *codegen.runtime_sources()]
    flags = ["-DDK_EMULATE_DSP"] if variant == "dsp" else []
    proc = subprocess.run(["gcc", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
                           *flags, "-o", str(lib), *[f"-I{p}" for p in codegen.include_dirs()],
                           *map(str, srcs)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return info, ctypes.CDLL(str(lib))


def check_generated_model(model: bytes, out, variant: str, n: int = 12, seed: int = 0,
                          optimize: str = "speed") -> dict:
    info, lib = compile_model(model, out, variant, optimize)
    inp = oracle.model_inputs(model)[0]
    n_out = int(np.prod(info["output"]["shape"]))
    rng = np.random.default_rng(seed)
    for i in range(n):
        x = (rng.normal(size=inp.shape) * rng.uniform(5, 120)).clip(-128, 127).astype(np.int8)
        if i == n - 1:
            x = rng.choice(np.array([-128, 127], np.int8), size=inp.shape)
        ref = oracle.run(model, x).reshape(-1)
        out_fast, out_dbg = np.zeros(n_out, np.int8), np.zeros(n_out, np.int8)
        got = {}
        cb = EMIT(lambda k, d, size, c: got.__setitem__(k, np.ctypeslib.as_array(d, shape=(size,)).copy()))
        assert lib.model_invoke(x.ctypes.data_as(ctypes.c_void_p), out_fast.ctypes.data_as(ctypes.c_void_p)) == 0
        assert np.array_equal(out_fast, ref), i
        if i < 3:   # every layer, through the debug path (which recomputes fused intermediates)
            assert lib.model_invoke_debug(x.ctypes.data_as(ctypes.c_void_p),
                                          out_dbg.ctypes.data_as(ctypes.c_void_p), cb, None) == 0
            assert np.array_equal(out_dbg, out_fast)
            tensors = oracle.run_capture(model, [x])
            assert len(got) == len(info["layers"])
            for k, layer in enumerate(info["layers"]):
                assert np.array_equal(got[k], tensors[layer["tensor"]].reshape(-1)), layer["name"]
    return info


@pytest.fixture(scope="module")
def drsn_blocks():
    from tests.test_kernels import drsn_block_model
    return [drsn_block_model(seed) for seed in (4, 5)]


def test_generated_drsn_with_fused_kernels_is_bit_exact_to_tflm(variant, drsn_blocks, tmp_path):
    kinds = set()
    for j, model in enumerate(drsn_blocks):
        info = check_generated_model(model, tmp_path / f"m{j}", variant, seed=j)
        kinds |= {s["kind"] for s in info["steps"]}
        assert info["scratch_bytes"] > 0 and info["arena_bytes"] > 0
    assert {"conv1d", "shrink", "absmean"} <= kinds


def test_smoke_model_uses_every_fused_kernel_and_in_place_steps(smoke_tflite, tmp_path):
    info = check_generated_model(smoke_tflite, tmp_path, "dsp", n=6)
    kinds = [s["kind"] for s in info["steps"]]
    assert {"conv1d", "shrink", "affine", "absmean"} <= set(kinds)
    assert any(s["inplace"] for s in info["steps"])
    fused = [layer for layer in info["layers"] if layer["fused_into"] is not None]
    assert fused and all(info["layers"][layer["fused_into"]]["kernel"] for layer in fused)


# --- the fast CONV_2D and FULLY_CONNECTED paths (ops/conv.py, ops/fully_connected.py) --------

def fast_chain_model(seed: int, per_channel_dense: bool) -> bytes:
    """One converted model whose layers take every variant of the fast paths: a strided 3 x 3
    first layer on 3 channels (im2col, padded patch), 1 x 1 on odd and on multiple-of-4
    channels (im2col and direct), a VALID non-square filter with unequal strides, a dilated
    filter, a strided 1 x 1 (a ResNet projection), then FULLY_CONNECTED on depths that are not
    and are multiples of 4; random weight scales (saturation), ReLU on some layers."""
    from tests.test_kernels import convert, random_range
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(seed)
    h, w, cin = int(rng.integers(9, 14)), int(rng.integers(8, 13)), 3
    layers = [((3, 3), (2, 2), "SAME", (1, 1), 7), ((1, 1), (1, 1), "SAME", (1, 1), 8),
              ((1, 1), (1, 1), "VALID", (1, 1), 5), ((3, 2), (1, 2), "VALID", (1, 1), 12),
              ((3, 3), (1, 1), "SAME", (2, 2), 8), ((1, 1), (2, 2), "VALID", (1, 1), 9)]
    weights = []
    c = cin
    for (kh, kw), _, _, _, cout in layers:
        scale = np.exp(rng.uniform(-1.5, 0.5, size=cout))
        weights.append(((rng.normal(size=(kh, kw, c, cout)) * scale).astype(np.float32),
                        rng.normal(scale=0.5, size=cout).astype(np.float32), bool(rng.integers(0, 2))))
        c = cout
    dense = [4 * int(rng.integers(2, 6)) + 2, 4 * int(rng.integers(2, 5)), int(rng.integers(3, 9))]

    def fn(x):
        y = x
        for ((_, _), strides, padding, dil, _), (wt, b, relu) in zip(layers, weights):
            y = tf.nn.conv2d(y, wt, strides=strides, padding=padding, dilations=dil) + b
            y = tf.nn.relu(y) if relu else y
        y = tf.reshape(y, (1, -1))
        for units in dense:
            d = int(y.shape[-1])
            wd = (rng.normal(size=(d, units)) / np.sqrt(d) * 3).astype(np.float32)
            y = tf.matmul(y, wd) + rng.normal(size=units).astype(np.float32)
        return y
    return convert([([((1, h, w, cin), *random_range(rng))], fn)], seed,
                   per_channel_dense=per_channel_dense)


@pytest.mark.parametrize("seed,per_channel", [(3, True), (8, False)])
def test_fast_conv2d_and_fc_are_bit_exact_to_tflm(variant, seed, per_channel, tmp_path):
    model = fast_chain_model(seed, per_channel)
    ops = oracle.read_operators(model)
    fcs = [op for op in ops if op.opcode == "FULLY_CONNECTED"]
    assert len(fcs) == 3 and {op.inputs[1].shape[1] % 4 == 0 for op in fcs} == {True, False}
    assert all((len(op.inputs[1].scales) > 1) == per_channel for op in fcs)
    assert any(op.inputs[0].zero_point not in (0, -128) for op in ops)   # input offsets matter
    info = check_generated_model(model, tmp_path, variant, n=8, seed=seed)
    kinds = [s["kind"] for s in info["steps"]]
    assert kinds.count("conv_fast") == 6 and kinds.count("fc_fast") == 3, kinds
    kernels = {layer["kernel"] for layer in info["layers"]}
    assert {"dk_conv_s8_fast", "dk_conv1d_s8_fast", "dk_fully_connected_s8_fast"} <= kernels, kernels


def fast_depthwise_model(seed: int) -> bytes:
    """Depthwise layers for dk_depthwise_conv_s8_fast (3 x 3 stride 1 and 2, SAME and VALID,
    5 x 3, dilation 2, ReLU6) between 1 x 1 convolutions, and two it leaves to the reference
    kernel (depth multiplier 2, channels not a multiple of 4)."""
    from tests.test_kernels import convert, random_range
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(16, 21)), int(rng.integers(14, 19))
    dws = [((3, 3), 1, "SAME", 1, "relu"), ((3, 3), 2, "SAME", 1, "relu6"), ((5, 3), 1, "VALID", 1, None),
           ((3, 3), 1, "SAME", 2, "relu"), ((3, 3), 2, "VALID", 1, None)]
    chans = [8, 12, 8, 16, 4]
    params = [(rng.normal(size=(kh, kw, c, 1)) * np.exp(rng.uniform(-1, 0.5, size=(1, 1, c, 1))),
               rng.normal(scale=0.5, size=c)) for ((kh, kw), *_), c in zip(dws, chans)]
    mix = [rng.normal(size=(1, 1, a, b)).astype(np.float32) for a, b in zip([4] + chans[:-1], chans)]

    def fn(x):
        y = x
        for (_, stride, padding, dil, act), (wd, b), m in zip(dws, params, mix):
            y = tf.nn.conv2d(y, m, strides=1, padding="SAME")
            y = tf.nn.depthwise_conv2d(y, wd.astype(np.float32), strides=[1, stride, stride, 1],
                                       padding=padding, dilations=[dil, dil]) + b.astype(np.float32)
            y = tf.nn.relu(y) if act == "relu" else tf.nn.relu6(y) if act == "relu6" else y
        y = tf.nn.depthwise_conv2d(y, rng.normal(size=(3, 3, 4, 2)).astype(np.float32), [1, 1, 1, 1], "SAME")
        y = tf.nn.conv2d(y, rng.normal(size=(1, 1, 8, 3)).astype(np.float32), strides=1, padding="SAME")
        return tf.nn.depthwise_conv2d(y, rng.normal(size=(3, 3, 3, 1)).astype(np.float32), [1, 1, 1, 1], "SAME")
    return convert([([((1, h, w, 4), *random_range(rng))], fn)], seed)


@pytest.mark.parametrize("seed", (5, 13))
def test_fast_depthwise_conv2d_is_bit_exact_to_tflm(variant, seed, tmp_path):
    model = fast_depthwise_model(seed)
    ops = [op for op in oracle.read_operators(model) if op.opcode == "DEPTHWISE_CONV_2D"]
    assert len(ops) == 7
    assert any(op.inputs[0].zero_point not in (0, -128) for op in ops)   # input offsets matter
    info = check_generated_model(model, tmp_path, variant, n=8, seed=seed)
    kinds = [s["kind"] for s in info["steps"]]
    assert kinds.count("dw_fast") == 5, kinds
    kernels = [layer["kernel"] for layer in info["layers"]]
    reference = [k for k in kernels if "depthwise" in k and not k.endswith("_fast")]
    assert kernels.count("dk_depthwise_conv_s8_fast") == 5 and len(reference) == 2, kernels


def test_fast_fully_connected_on_several_rows_is_bit_exact_to_tflm(variant, tmp_path):
    """FULLY_CONNECTED on 3 rows: depths 20 and 12 (dk_conv1d_s8_fast over the rows) and 10
    (the im2col path), per-channel weights, ReLU on one."""
    from tests.test_kernels import convert, random_range
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(21)
    ws = [(rng.normal(size=(a, b)) / np.sqrt(a) * 2).astype(np.float32) for a, b in ((20, 12), (12, 10), (10, 7))]

    def fn(x):
        y = tf.nn.relu(tf.matmul(tf.reshape(x, (3, 20)), ws[0]) + 0.3)
        return tf.reshape(tf.matmul(tf.matmul(y, ws[1]) - 0.2, ws[2]), (1, -1))
    model = convert([([((1, 60), *random_range(rng))], fn)], 21)
    fcs = [op for op in oracle.read_operators(model) if op.opcode == "FULLY_CONNECTED"]
    assert [op.inputs[0].shape[0] for op in fcs] == [3, 3, 3]
    info = check_generated_model(model, tmp_path, variant, n=8, seed=21)
    kinds = [s["kind"] for s in info["steps"]]
    assert kinds.count("fc_fast") == 3, kinds
    fast = [layer["kernel"] for layer in info["layers"] if layer["kernel"].endswith("_fast")]
    assert fast == ["dk_conv1d_s8_fast", "dk_conv1d_s8_fast", "dk_conv_s8_fast"], info["layers"]


# --- size mode: int8 weights in the fast records (firmware.optimize = "size") -------------------

FAST_KERNELS = {"dk_conv1d_s8_fast", "dk_conv_s8_fast", "dk_fully_connected_s8_fast"}


def test_size_mode_is_bit_exact_and_halves_the_fast_layers_weights(variant, drsn_blocks, tmp_path):
    """Every layer on the int16 fast records in speed mode takes int8 records in size mode,
    the outputs stay TFLM's bit for bit (every layer, through the debug path too), and each
    such layer's constants shrink by exactly its weights' int8 bytes (2 * taps per channel pair).
    The one-row FULLY_CONNECTED layers (each weight used once, a small share of the MACs)
    are int8 in both modes."""
    models = [fast_chain_model(3, True), *drsn_blocks]
    for j, model in enumerate(models):
        speed = codegen.generate(model, tmp_path / f"speed{j}", name="m")
        size = check_generated_model(model, tmp_path / f"size{j}", variant, n=6, seed=j, optimize="size")
        assert size["optimize"] == "size" and size["weight_bytes"] < speed["weight_bytes"]
        fast = [l for l in speed["layers"] if l["kernel"] in FAST_KERNELS]
        once = [l["index"] for l in fast if l["kernel"] == "dk_fully_connected_s8_fast"]
        assert [l for l in fast if l["index"] not in once]
        assert speed["weights8_layers"] == once
        assert size["weights8_layers"] == sorted(l["index"] for l in fast)
        ops = oracle.read_operators(model)
        for a, b in zip(speed["layers"], size["layers"]):
            if a["kernel"] not in FAST_KERNELS or a["index"] in once:
                assert a["const_bytes"] == b["const_bytes"], a["name"]
                continue
            w = ops[a["index"]].inputs[1]
            out_c = int(w.shape[0])
            taps = -(-int(np.prod(w.shape[1:])) // 4) * 4
            assert a["const_bytes"] - b["const_bytes"] == ((out_c + 1) // 2) * 2 * taps, a["name"]
            assert b["weights8"] and not a["weights8"]
        assert speed["weight_bytes"] - size["weight_bytes"] == sum(
            a["const_bytes"] - b["const_bytes"] for a, b in zip(speed["layers"], size["layers"]))


def test_optimize_must_be_speed_or_size(tmp_path):
    from drsn_edge.errors import UserError
    with pytest.raises(UserError, match="optimize = 'fast'"):
        codegen.generate(fast_chain_model(3, True), tmp_path, optimize="fast")
