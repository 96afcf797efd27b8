"""Float windows -> int8 model inputs, the way TFLite Micro's QUANTIZE kernel does it.

Every stage that turns float windows into model inputs (quantize parity, the firmware
self-test, the benchmark vectors, the HIL runner, the tests) calls `quantize_input`, so the
board, the host reference and the reports all see the same int8 input for a window.
"""

from __future__ import annotations

import numpy as np


def quantize_input(x, scale: float, zero_point: int) -> np.ndarray:
    """int8 q = clamp(round(x / scale) + zero_point, -128, 127), as TFLM's QUANTIZE kernel
    (reference AffineQuantize) computes it: the division in float32, halves rounded away
    from zero (std::round), then the zero point added and the result clamped."""
    v = np.asarray(x, np.float32) / np.float32(scale)
    # std::round on the float32 quotient. floor(|v| + 0.5) in float32 would be wrong just
    # below a half (0.49999997 + 0.5 rounds up to 1.0 in float32); in float64 the sum of a
    # float32 and 0.5 is exact, so the floor sees the true value.
    a = np.abs(v.astype(np.float64))
    r = np.copysign(np.floor(a + 0.5), v)
    return np.clip(r + zero_point, -128, 127).astype(np.int8)


# The share of the random float inputs' span that lies beyond the int8 range, on each side.
FLOAT_MARGIN = 0.125


def random_float_inputs(rng: np.random.Generator, shape, scale: float, zero_point: int) -> np.ndarray:
    """Seeded random float32 inputs for a model whose float32 input is quantized with
    (scale, zero_point): uniform over the values the int8 input can represent,
    [(-128 - zp) * scale, (127 - zp) * scale], widened by FLOAT_MARGIN of that span on each
    side so that one value in five lands beyond the ends and exercises the clamp."""
    lo, hi = (-128 - zero_point) * float(scale), (127 - zero_point) * float(scale)
    pad = FLOAT_MARGIN * (hi - lo)
    return rng.uniform(lo - pad, hi + pad, size=shape).astype(np.float32)
