"""Additive noise at an exact per-window SNR, as in the DRSN paper's noise experiments.

Three kinds: white Gaussian, pink (power spectral density proportional to 1/f) and
Laplacian (heavy tails, kurtosis 6). The SNR of each window is measured against that
window's own clean power, so quiet and loud windows are equally hard.
"""

from __future__ import annotations

import numpy as np

from drsn_edge.errors import UserError

KINDS = ("gaussian", "pink", "laplacian")


def _check_kind(kind) -> str:
    if kind not in KINDS:
        raise UserError(f"unknown noise kind {kind!r} (data.noise_types); "
                        f"use one of: {', '.join(KINDS)}")
    return kind


def make(kind: str, shape, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance noise of `kind`; the last axis is time."""
    _check_kind(kind)
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    if kind == "gaussian":
        return rng.standard_normal(shape)
    if kind == "laplacian":
        return rng.laplace(0.0, 1.0 / np.sqrt(2.0), shape)  # variance 2 b^2 = 1
    white = rng.standard_normal(shape)
    n = shape[-1]
    spectrum = np.fft.rfft(white, axis=-1)
    k = np.arange(spectrum.shape[-1], dtype=np.float64)
    k[0] = np.inf  # no DC: 1/f has no finite value there, and an offset is not noise
    pink = np.fft.irfft(spectrum / np.sqrt(k), n, axis=-1)
    # Each row's variance is dominated by a few low bins, so normalise per row.
    return pink / (pink.std(axis=-1, keepdims=True) + 1e-300)


def add(clean, snr_db, kind, rng: np.random.Generator) -> np.ndarray:
    """clean [N, L] plus noise at `snr_db` (scalar or per row) of `kind` (str or per row).

    The noise of each row is scaled by its realised power, so the realised SNR equals the
    target up to float32 rounding.
    """
    clean = np.asarray(clean)
    if clean.ndim != 2:
        raise ValueError(f"clean must be [N, L], got shape {clean.shape}")
    n, length = clean.shape
    snr = np.broadcast_to(np.asarray(snr_db, dtype=np.float64), (n,))
    kinds = np.broadcast_to(np.asarray(kind, dtype=object), (n,))

    noise = np.empty((n, length))
    seen = set(kinds.tolist())
    for k in seen - set(KINDS):
        _check_kind(k)
    for k in KINDS:  # fixed order, so the draws do not depend on set iteration order
        rows = np.flatnonzero(kinds == k)
        if rows.size:
            noise[rows] = make(k, (rows.size, length), rng)

    x = clean.astype(np.float64)
    p_clean = np.mean(x**2, axis=1)
    p_noise = np.mean(noise**2, axis=1)
    target = p_clean / 10.0 ** (snr / 10.0)
    gain = np.sqrt(np.divide(target, p_noise, out=np.zeros(n), where=p_noise > 0))
    return (x + noise * gain[:, None]).astype(np.float32)


def snr_db(clean, noisy) -> np.ndarray:
    """Realised SNR in dB of each row."""
    clean = np.asarray(clean, dtype=np.float64)
    noise = np.asarray(noisy, dtype=np.float64) - clean
    return 10.0 * np.log10(np.sum(clean**2, axis=-1) / np.sum(noise**2, axis=-1))
