"""Raw int16 windows -> int8 model inputs: drsn_edge/preprocess.py (numpy) against its C twin
dk_preprocess_s16 (firmware_gen/runtime/kernels/preprocess.c, run on the host through
hostlib) on randomized and edge-case windows, and both against the float definition
(training/dataset.py normalize + int8.quantize_input)."""

import math

import numpy as np
import pytest

from drsn_edge import preprocess as pre
from drsn_edge.int8 import quantize_input
from firmware_gen import hostlib

QUANT = [(0.03125, -3), (0.0313, 0), (0.047, -128), (0.019, 127), (1.0, 5), (1e-30, 0),
         (1e30, -1), (2.0 ** -20, 17), (3000.0, 2)]
# The C twin computes each range of the final shift its own way (saturate, 64-bit shift,
# high word, all zero point); the cases above reach every one.
SHIFT_REGIMES = [-10 ** 6, 1, 32, 48, 63, 10 ** 6]


def edge_windows(n: int, rng) -> dict[str, np.ndarray]:
    i = np.arange(n)
    spike = np.zeros(n, np.int16)
    spike[rng.integers(n)] = 32767
    neg_spike = np.full(n, 32767, np.int16)
    neg_spike[rng.integers(n)] = -32768
    noise = rng.normal(0, 20000, n)
    return {
        "zeros": np.zeros(n, np.int16),
        "dc": np.full(n, -1234, np.int16),
        "dc_max": np.full(n, 32767, np.int16),
        "dc_min": np.full(n, -32768, np.int16),
        "square_full": np.where(i % 2, 32767, -32768).astype(np.int16),
        "square_slow": np.where((i // 7) % 2, 32767, -32768).astype(np.int16),
        "square_duty": np.where(i % 5 == 0, 32767, -32768).astype(np.int16),
        "spike": spike,
        "neg_spike": neg_spike,
        "clipped": np.clip(np.round(noise * 3), -32768, 32767).astype(np.int16),
        "tiny_1": rng.integers(-1, 2, n).astype(np.int16),
        "tiny_one_lsb": np.where(i == n // 2, 1, 0).astype(np.int16),
        "tiny_offset": (rng.integers(0, 2, n) + 20000).astype(np.int16),
        "ramp": ((i * 65535) // max(n - 1, 1) - 32768).astype(np.int16),
        "uniform": rng.integers(-32768, 32768, n).astype(np.int16),
    }


def random_windows(n: int, count: int, rng) -> np.ndarray:
    amp = 10.0 ** rng.uniform(-0.5, 4.5, (count, 1))
    dc = rng.uniform(-20000, 20000, (count, 1)) * (rng.random((count, 1)) < 0.5)
    x = rng.normal(size=(count, n)) * amp + dc
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def check_same(x: np.ndarray, scale: float, zp: int, what: str) -> None:
    want = pre.preprocess(x[None], scale, zp)[0]
    params = pre.window_params(x[None], scale)
    status, got, info = hostlib.preprocess(x, scale, zp)
    assert status == 0, what
    assert np.array_equal(got, want), (what, np.flatnonzero(got != want)[:5])
    assert info["mean"] == params["mean"][0], what
    assert info["energy"] == params["energy"][0], what
    assert info["multiplier"] == params["multiplier"][0], what
    assert info["shift"] == params["shift"][0], what


@pytest.mark.parametrize("n", [1, 2, 3, 64, 1000, 1024, 4096])
def test_c_equals_numpy_on_edge_windows(n):
    rng = np.random.default_rng(n)
    for name, x in edge_windows(n, rng).items():
        for scale, zp in QUANT:
            check_same(x, scale, zp, f"{name} n={n} scale={scale} zp={zp}")


def test_the_edge_cases_reach_every_shift_regime():
    shifts = [int(pre.window_params(x, s)["shift"])
              for n in (64, 1024) for x in edge_windows(n, np.random.default_rng(n)).values()
              for s, _ in QUANT if pre.window_params(x)["energy"] > 0]
    assert (np.histogram(shifts, SHIFT_REGIMES)[0] > 0).all()


def test_c_equals_numpy_on_random_windows():
    rng = np.random.default_rng(7)
    for n in (64, 1024, 777):
        xs = random_windows(n, 300, rng)
        scales = 10.0 ** rng.uniform(-3, 0.5, len(xs))
        zps = rng.integers(-128, 128, len(xs))
        for x, s, z in zip(xs, scales, zps):
            check_same(x, float(s), int(z), f"random n={n}")


def test_c_equals_numpy_on_the_longest_window():
    """N = 65536 with the largest possible |c| (one -32768 among 32767s): E*N is just
    below 2^64, the bound the design rests on."""
    rng = np.random.default_rng(3)
    x = np.full(65536, 32767, np.int16)
    x[rng.integers(65536, size=3)] = -32768
    assert int(pre.window_params(x)["energy"]) * 65536 < 2 ** 64
    for scale, zp in QUANT[:4]:
        check_same(x, scale, zp, "longest")
    check_same(rng.integers(-32768, 32768, 65536).astype(np.int16), 0.03, 1, "longest random")


def test_silent_and_dc_windows_give_the_zero_point():
    for x in (np.zeros((3, 64), np.int16), np.full((2, 100), -32768, np.int16)):
        for zp in (-128, -3, 0, 127):
            assert (pre.preprocess(x, 0.03, zp) == zp).all()
            status, out, info = hostlib.preprocess(x[0], 0.03, zp)
            assert status == 0 and (out == zp).all() and info["energy"] == 0


def test_saturation_and_vanishing_gain():
    x = np.array([-5, 0, 5, 0], np.int16)
    # a gain so large that every non-zero sample saturates (shift <= 0)
    assert pre.window_params(x, 1e-30)["shift"] <= 0
    assert pre.preprocess(x, 1e-30, 0).tolist() == [-128, 0, 127, 0]
    assert hostlib.preprocess(x, 1e-30, 0)[1].tolist() == [-128, 0, 127, 0]
    # a gain so small that everything rounds to the zero point (shift > 62)
    assert pre.window_params(x, 1e30)["shift"] > 62
    assert (pre.preprocess(x, 1e30, -7) == -7).all()
    assert (hostlib.preprocess(x, 1e30, -7)[1] == -7).all()


def test_matches_the_float_definition_within_one_lsb():
    """Against normalize() + quantize_input: at most 1 LSB apart (mean rounding and
    float rounding near halves), and on most samples equal."""
    rng = np.random.default_rng(11)
    x = random_windows(1024, 200, rng)
    x = x[pre.window_params(x)["energy"] > 1024 * 100 ** 2]     # not tiny: RMS > 100 LSB
    xf = x.astype(np.float64)
    xf -= xf.mean(axis=1, keepdims=True)
    xf /= np.sqrt((xf * xf).mean(axis=1, keepdims=True))
    for scale, zp in [(0.0313, -3), (0.05, 0), (0.02, 10)]:
        d = np.abs(pre.preprocess(x, scale, zp).astype(int) - quantize_input(xf, scale, zp))
        assert d.max() <= 1
        assert (d > 0).mean() < 0.05


def test_isqrt_is_exact():
    rng = np.random.default_rng(5)
    v = np.concatenate([rng.integers(0, 2 ** 63, 2000, dtype=np.uint64) * np.uint64(2)
                        + rng.integers(0, 2, 2000, dtype=np.uint64),
                        np.array([0, 1, 2, 3, 4, 2 ** 62 - 1, 2 ** 62, 2 ** 64 - 1,
                                  (2 ** 32 - 1) ** 2, (2 ** 32 - 1) ** 2 - 1], np.uint64)])
    got = pre.isqrt64(v)
    assert all(int(g) == math.isqrt(int(a)) for g, a in zip(got, v))


def test_rejects_what_it_cannot_define():
    x = np.zeros(64, np.int16)
    for scale in (0.0, -0.5, float("nan"), float("inf"), 1e-45):   # 1e-45: subnormal
        with pytest.raises(ValueError, match="scale"):
            pre.preprocess(x, scale, 0)
        assert hostlib.preprocess(x, scale, 0)[0] == -2
    for zp in (-129, 128):
        with pytest.raises(ValueError, match="zero point"):
            pre.preprocess(x, 0.03, zp)
        assert hostlib.preprocess(x, 0.03, zp)[0] == -3
    with pytest.raises(ValueError, match="int16"):
        pre.preprocess(x.astype(np.int32), 0.03, 0)
    with pytest.raises(ValueError, match="samples"):
        pre.preprocess(np.zeros((2, 0), np.int16), 0.03, 0)
    assert hostlib.preprocess(x, 0.03, 0, n=0)[0] == -1
    assert hostlib.preprocess(x, 0.03, 0, n=65537)[0] == -1


def test_to_int16_rounds_half_away_and_clips():
    fs = 8.0
    lsb = fs / 32768
    x = np.array([0.0, 0.5 * lsb, -0.5 * lsb, 1.49 * lsb, -2.5 * lsb, fs, -fs, 10 * fs,
                  -10 * fs, fs - lsb])
    assert pre.to_int16(x, fs).tolist() == [0, 1, -1, 1, -3, 32767, -32768, 32767, -32768, 32767]
    with pytest.raises(ValueError):
        pre.to_int16(x, 0.0)


def test_exact_halves_round_away_from_zero():
    """A window whose RMS is exactly 2 (E*N = 2^10): with scale 1 every output is c / 2
    exactly, so +-3 and +-1 are ties. Both twins round them away from zero, as
    quantize_input (TFLM's QUANTIZE) does."""
    c = np.array([3, -3, 3, -3, 2, -2, 2, -2, 2, -2, 1, -1, 1, -1, 0, 0], np.int16)
    params = pre.window_params(c, 1.0)
    assert params["energy"] == 64 and params["multiplier"] == 2 ** 29 and params["shift"] == 30
    want = [2, -2, 2, -2, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 0, 0]
    for zp in (0, 10):
        expected = [v + zp for v in want]
        assert pre.preprocess(c, 1.0, zp).tolist() == expected
        assert hostlib.preprocess(c, 1.0, zp)[1].tolist() == expected
        assert quantize_input(c / 2.0, 1.0, zp).tolist() == expected


# --- the host pipeline: what the model is trained and evaluated on ------------------------

def test_model_input_is_the_dequantized_integer_preprocessing():
    """model_input(x) = dequantize(preprocess(to_int16(x))) exactly, vectorised over any
    leading shape and in chunks; quantizing it again (what hil, parity and the self-test
    do) gives the very bytes preprocess computes, and it differs from the float definition
    (normalize + quantize_input) by at most 1 LSB."""
    rng = np.random.default_rng(21)
    contract = {"scale": 1 / 16, "zero_point": 0, "clip_rms": 8.0, "sensor_full_scale": 8.0}
    x = rng.normal(0, 0.3, (5, 7, 256)) + rng.normal(0, 0.05, (5, 7, 1))
    x[0, 0] = 0.0                                                # silent window
    x[0, 1, 3] = 50.0                                            # clipped in int16
    samples, q = pre.host_pipeline(x, contract)
    assert samples.dtype == np.int16 and q.dtype == np.int8 and q.shape == x.shape
    np.testing.assert_array_equal(samples, pre.to_int16(x, 8.0))
    np.testing.assert_array_equal(q, pre.preprocess(pre.to_int16(x, 8.0), 0.0625, 0))
    assert (q[0, 0] == 0).all() and samples[0, 1, 3] == 32767
    m = pre.model_input(x, contract)
    assert m.dtype == np.float32
    np.testing.assert_array_equal(m, q.astype(np.float32) / 16)
    np.testing.assert_array_equal(quantize_input(m, 0.0625, 0), q)
    # int16 windows go in as they are; chunking changes nothing
    np.testing.assert_array_equal(pre.host_pipeline(samples, contract)[1], q)
    big = rng.normal(0, 1, (pre._CHUNK + 5, 64))
    np.testing.assert_array_equal(pre.host_pipeline(big, contract)[1],
                                  pre.preprocess(pre.to_int16(big, 8.0), 0.0625, 0))
    # the float relation, as documentation: within one LSB of normalize + quantize_input
    from training.dataset import normalize
    ok = x.reshape(-1, 256)[2:]
    d = np.abs(pre.host_pipeline(ok, contract)[1].astype(int)
               - quantize_input(normalize(pre.to_int16(ok, 8.0).astype(np.float64)), 0.0625, 0))
    assert d.max() <= 1


def test_input_contract_from_the_config():
    c = pre.input_contract({"data": {"input_clip_rms": 4, "sensor_full_scale": 2.0}})
    assert c == {"scale": 0.03125, "zero_point": 0, "clip_rms": 4.0, "sensor_full_scale": 2.0}
    assert pre.contract_range(c) == (-4.0, 3.96875)
    assert pre.input_contract({"data": {"sensor_full_scale": 8.0}})["scale"] == 0.0625
    q = np.arange(-128, 128, dtype=np.int8)
    np.testing.assert_array_equal(quantize_input(pre.dequantize(q, c), c["scale"], 0), q)
