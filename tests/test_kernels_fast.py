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

import numpy as np
import pytest

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
    words = lambda r, a, b: r[a:b].astype("<i2").view("<i4").tolist()
    assert words(rec[0], 0, 4) == [20, -40] and words(rec[1], 0, 4) == [60, 0]
    assert rec[0, 4:20].tolist() == (2 * wide[:16]).tolist()
    assert words(rec[0], 20, 24) == [1 << 30, 1 << 30]
    assert words(rec[0], 24, 28) == [1 + (-7 << 1), 2 + (-7 << 2)] and words(rec[0], 28, 32) == [1, 2]
    assert codegen.conv1d_wide(16, 1) and codegen.conv1d_wide(1, 4) and not codegen.conv1d_wide(3, 1)


def test_random_conv_cases_cover_every_conv1d_variant():
    rng = np.random.default_rng(5)
    kinds = set()
    for case in range(60):
        x, w, bias, q, stride, padding = random_conv_case(rng)
        in_c = w.shape[3]
        fast = codegen.conv1d_fast(in_c, stride, codegen.small_accumulators(w, bias, q), q)
        kinds.add("fast" if fast else "wide" if codegen.conv1d_wide(in_c, stride) else "int8")
    assert kinds == {"fast", "wide", "int8"}


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


def compile_model(model: bytes, out, variant: str):
    info = codegen.generate(model, out, name="m")
    lib = out / f"libm-{variant}.so"
    srcs = [out / "model.c", out / "model_data.c", *codegen.runtime_sources()]
    flags = ["-DDK_EMULATE_DSP"] if variant == "dsp" else []
    proc = subprocess.run(["gcc", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
                           *flags, "-o", str(lib), *[f"-I{p}" for p in codegen.include_dirs()],
                           *map(str, srcs)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return info, ctypes.CDLL(str(lib))


def check_generated_model(model: bytes, out, variant: str, n: int = 12, seed: int = 0) -> dict:
    info, lib = compile_model(model, out, variant)
    inp = oracle.model_inputs(model)[0]
    n_out = int(np.prod(info["output"]["shape"]))
    rng = np.random.default_rng(seed)
    interp = oracle.runtime.Interpreter.from_bytes(model)
    for i in range(n):
        x = (rng.normal(size=inp.shape) * rng.uniform(5, 120)).clip(-128, 127).astype(np.int8)
        if i == n - 1:
            x = rng.choice(np.array([-128, 127], np.int8), size=inp.shape)
        interp.set_input(x, 0)
        interp.invoke()
        ref = interp.get_output(0).reshape(-1)
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
