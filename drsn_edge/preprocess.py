"""Raw int16 sensor window -> int8 model input, in fixed point: the one definition.

A board that reads an ADC or accelerometer has int16 samples; this module defines how those
become the model's int8 input (zero mean, unit RMS, quantized with the model's input scale
and zero point), with integer arithmetic only, so the firmware (the C twin in
firmware_gen/runtime/kernels/preprocess.c, `dk_preprocess_s16`) and the host compute the
same bytes. docs/preprocessing.md has the derivation; the rules, for a window x[0..N-1]
of int16 samples (1 <= N <= 65536), input scale s (a positive, normal float32) and zero
point z (in [-128, 127]):

1. Mean, rounded half up: m = floor((2 * sum(x) + N) / (2 * N)) (int64; m is in int16 range).
2. Centre: c[i] = x[i] - m, |c| <= 65535.
3. Energy E = sum(c^2) (int64, < 2^48). E == 0 is a **silent window** (all samples equal,
   DC included): every output is z, nothing is divided.
4. P = E * N (uint64, < 2^64 since |c| < 2^16 and N <= 2^16); RMS = sqrt(P) / N.
   Normalise P by an even shift: k = clz64(P) // 2, P' = P << 2k in [2^62, 2^64), and
   r = isqrt(P') (floor of the exact square root, digit by digit) in [2^31, 2^32), so
   sqrt(P) ~= r * 2^-k with a relative error below 2^-31.
5. s = ms * 2^es exactly from the float32 bits (ms the 24-bit significand with its hidden
   bit, es = exponent field - 150).
6. The per-window reciprocal: D = (r * ms) >> 24 (uint64 product < 2^56, D in [2^30, 2^32)),
   t = 60 - bitlen(N), M = floor((N << t + D // 2) / D), a multiplier in (2^27, 2^30],
   and a shift sh = t + 24 + es - k. Then c / (RMS * s) ~= c * M * 2^-sh.
7. Per sample: p = c * M (int64, |p| < 2^47); y = round(p / 2^sh), halves away from zero
   (TFLM's QUANTIZE rule), y = sign(p) * ((|p| + 2^(sh-1)) >> sh) for 1 <= sh <= 62,
   computed (like the C twin) as the arithmetic shift (p + 2^(sh-1) - [p < 0]) >> sh, the
   same integer; sh > 62 gives 0 (|p| < 2^47); sh <= 0 means a gain of at least 2^27 per
   LSB, so y saturates (sign(p) * 256, 0 stays 0).
8. q = clamp(z + y, -128, 127).

No step can overflow or divide by zero (the bounds are stated above; the C twin uses the
same types). The result equals `quantize_input(normalize(x))` within one LSB except where
the mean's rounding matters (tiny amplitudes).

The model is trained on exactly these bytes: every window the model is trained, validated,
calibrated and evaluated on is `model_input(x, contract)` = dequantize(preprocess(
to_int16(x, full_scale))) with the **input contract** (`input_contract(cfg)`): scale
data.input_clip_rms / 128 (a power of two, so the dequantized values are exact in float32
and quantize back to the same int8), zero point 0. The converted model's input tensor
carries that scale and zero point (quantize checks it).

`to_int16` turns float recordings into int16 samples with the sensor scale
(`data.sensor_full_scale`: the physical value at int16 full scale): round half away from
zero of x * 32768 / full_scale, clipped to [-32768, 32767].
"""

from __future__ import annotations

import numpy as np

MAX_WINDOW = 1 << 16
INT16_MIN, INT16_MAX = -32768, 32767
# The saturation value for sh <= 0: any |y| >= 256 clamps the same way.
_SATURATED = 256


def to_int16(x, full_scale: float) -> np.ndarray:
    """Float samples in physical units -> int16, full_scale at 32768 counts, clipped."""
    if not (np.isfinite(full_scale) and full_scale > 0):
        raise ValueError(f"full_scale must be a positive number, got {full_scale!r}")
    v = np.asarray(x, np.float64) * (32768.0 / float(full_scale))
    r = np.copysign(np.floor(np.abs(v) + 0.5), v)
    return np.clip(r, INT16_MIN, INT16_MAX).astype(np.int16)


def scale_parts(scale: float) -> tuple[int, int]:
    """(ms, es) with float32(scale) == ms * 2^es exactly; ValueError unless the scale is a
    positive, normal, finite float32."""
    bits = int(np.array(scale, np.float32).view(np.uint32))
    exp_field = (bits >> 23) & 0xFF
    if bits >> 31 or exp_field == 0 or exp_field == 0xFF:
        raise ValueError(f"input scale {scale!r} is not a positive normal float32")
    return (bits & 0x7FFFFF) | 0x800000, exp_field - 150


def _bitlen(v: np.ndarray) -> np.ndarray:
    """Bit length of each uint64 (0 for 0), exactly."""
    v = v.astype(np.uint64)
    n = np.zeros(v.shape, np.int64)
    for s in (32, 16, 8, 4, 2, 1):
        big = v >= (np.uint64(1) << np.uint64(s))
        n += np.where(big, s, 0)
        v = np.where(big, v >> np.uint64(s), v)
    return n + (v > 0)


def isqrt64(v) -> np.ndarray:
    """floor(sqrt(v)) for uint64 values, digit by digit (the same steps as the C twin)."""
    rem = np.asarray(v, np.uint64).copy()
    root = np.zeros(rem.shape, np.uint64)
    bit = np.uint64(1) << np.uint64(62)
    one = np.uint64(1)
    while bit:
        trial = root + bit
        take = rem >= trial
        rem = np.where(take, rem - trial, rem)
        root = np.where(take, (root >> one) + bit, root >> one)
        bit = bit >> np.uint64(2)
    return root


def window_params(x, scale: float | None = None) -> dict:
    """The per-window integers of steps 1-6 for int16 windows [..., N]: mean, energy, k,
    root, the centred samples and, given the input scale, multiplier M and shift sh
    (silent windows: 0 and 0). For reports and the C twin's tests."""
    x = _check_samples(x)
    flat = x.reshape(-1, x.shape[-1]).astype(np.int64)
    n = flat.shape[1]
    total = flat.sum(axis=1)
    mean = np.floor_divide(2 * total + n, 2 * n)
    c = flat - mean[:, None]
    energy = (c * c).sum(axis=1)
    p = energy.astype(np.uint64) * np.uint64(n)
    k = np.where(energy > 0, (64 - _bitlen(p)) // 2, 0)
    r = isqrt64(p << k.astype(np.uint64) * np.uint64(2))
    lead = x.shape[:-1]
    out = {"mean": mean.reshape(lead), "energy": energy.reshape(lead), "k": k.reshape(lead),
           "root": r.reshape(lead), "centred": c.reshape(x.shape)}
    if scale is not None:
        ms, es = scale_parts(scale)
        d = (r * np.uint64(ms)) >> np.uint64(24)
        d = np.where(energy > 0, d, np.uint64(1))          # silent windows: unused, no / 0
        t = 60 - int(n).bit_length()
        m = ((np.uint64(n << t) + (d >> np.uint64(1))) // d).astype(np.int64)
        sh = t + 24 + es - k
        silent = energy == 0
        out["multiplier"] = np.where(silent, 0, m).reshape(lead)
        out["shift"] = np.where(silent, 0, sh).reshape(lead)
    return out


def preprocess(x, scale: float, zero_point: int) -> np.ndarray:
    """int16 windows [..., N] -> int8 model inputs [..., N] (steps 1-8 above)."""
    zero_point = int(zero_point)
    if not -128 <= zero_point <= 127:
        raise ValueError(f"input zero point {zero_point} is outside int8")
    w = window_params(x, scale)
    n = np.asarray(x).shape[-1]
    c = w["centred"].reshape(-1, n)
    energy = w["energy"].reshape(-1)
    m, sh = w["multiplier"].reshape(-1), w["shift"].reshape(-1)
    # Rounding half away from zero as the C twin does it: (p + h - [p < 0]) >> sh with an
    # arithmetic shift equals sign(p) * ((|p| + h) >> sh), h = 2^(sh-1) (docs/preprocessing.md).
    y = c * m[:, None]
    negative = y < 0
    shift = np.clip(sh, 1, 62)[:, None]
    y += np.int64(1) << (shift - 1)
    y -= negative
    y >>= shift
    gain_too_large = sh <= 0
    if gain_too_large.any():
        g = c[gain_too_large]
        y[gain_too_large] = np.sign(g) * _SATURATED
    y += zero_point
    np.maximum(y, -128, out=y)
    np.minimum(y, 127, out=y)
    y[energy == 0] = zero_point
    return y.astype(np.int8).reshape(np.asarray(x).shape)


def _check_samples(x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.int16:
        raise ValueError(f"samples must be int16, got {x.dtype}")
    if x.ndim < 1 or not 1 <= x.shape[-1] <= MAX_WINDOW:
        raise ValueError(f"a window holds 1..{MAX_WINDOW} samples, got shape {x.shape}")
    return x


# --- the input contract: what the model is trained on ---------------------------------------

# Default of data.input_clip_rms: the int8 input covers [-8, 8) RMS in steps of 1/16 RMS.
DEFAULT_CLIP_RMS = 8.0
# Windows per chunk in model_input (bounds the int64 temporaries: ~40 bytes per sample).
_CHUNK = 2048


def input_contract(cfg: dict) -> dict:
    """The model's input quantization fixed by the config, not calibrated: scale
    data.input_clip_rms / 128, zero point 0, and the sensor's full scale for to_int16."""
    d = cfg["data"]
    clip = float(d.get("input_clip_rms", DEFAULT_CLIP_RMS))
    return {"scale": clip / 128.0, "zero_point": 0, "clip_rms": clip,
            "sensor_full_scale": float(d["sensor_full_scale"])}


def contract_range(contract: dict) -> tuple[float, float]:
    """The float range [lo, hi] whose 8-bit fake quant has exactly the contract's scale and
    zero point: lo = (-128 - z) * s, hi = (127 - z) * s (exact for a power-of-two s)."""
    s, z = contract["scale"], contract["zero_point"]
    return (-128 - z) * s, (127 - z) * s


def host_pipeline(x, contract: dict) -> tuple[np.ndarray, np.ndarray]:
    """Float windows [..., N] in physical units -> (int16 samples, int8 model inputs): the
    samples a sensor at data.sensor_full_scale gives and what the board's preprocessing makes
    of them. int16 windows are taken as they are."""
    x = np.asarray(x)
    samples = x if x.dtype == np.int16 else to_int16(x, contract["sensor_full_scale"])
    flat = samples.reshape(-1, samples.shape[-1]) if samples.ndim > 1 else samples[None]
    q = np.empty(flat.shape, np.int8)
    for i in range(0, len(flat), _CHUNK):
        q[i:i + _CHUNK] = preprocess(flat[i:i + _CHUNK], contract["scale"], contract["zero_point"])
    return samples, q.reshape(samples.shape)


def dequantize(q, contract: dict) -> np.ndarray:
    """int8 model inputs -> the float values the model sees: (q - z) * s in float32 (exact
    for a power-of-two s, and quantize_input gives q back)."""
    return ((np.asarray(q, np.float32) - np.float32(contract["zero_point"]))
            * np.float32(contract["scale"])).astype(np.float32)


def model_input(x, contract: dict) -> np.ndarray:
    """What the model is trained and evaluated on for float windows [..., N] in physical
    units: dequantize(preprocess(to_int16(x))), float32, the shape of x."""
    return dequantize(host_pipeline(x, contract)[1], contract)


def contract_report(contract: dict) -> dict:
    """The input contract as train.json / quantize.json state it."""
    return {"scale": contract["scale"], "zero_point": contract["zero_point"],
            "clip_rms": contract["clip_rms"], "sensor_full_scale": contract["sensor_full_scale"],
            "model_trained_on_integer_preprocessing": True,
            "definition": "drsn_edge/preprocess.py model_input: preprocess(to_int16(x)) dequantized "
                          "(board: dk_preprocess_s16)"}
