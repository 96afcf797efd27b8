"""Training-time augmentation: what changes between operating conditions, drawn afresh.

A model trained at three loads meets a fourth where the shaft turns a few percent slower
(every fault frequency moves with it), impacts start at other times within the window, and
the path from the bearing to the sensor colours the spectrum differently. Each epoch, each
clean training window is therefore

- resampled by a factor in 1 ± `speed` (windowed-sinc interpolation; the housing
  resonances move too, as they would not on a real machine, but so do the fault rates,
  which is what matters for telling faults apart),
- cut at a random offset (`crop`) from a clean window longer than the model's input,
- tilted by a random spectral slope of up to ± `tilt_db` dB per octave.

Training windows are stored `margin(window)` samples longer than the model input so that
any draw fits; every other consumer takes the centred crop (`centre`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drsn_edge.errors import UserError

_TAPS = 4  # interpolation half-width: 8 input samples per output sample


@dataclass(frozen=True)
class Augment:
    speed: float = 0.0
    crop: bool = False
    tilt_db: float = 0.0

    @classmethod
    def from_config(cls, train_cfg: dict) -> "Augment":
        a = dict(train_cfg.get("augment", {}))
        aug = cls(float(a.get("speed", 0.0)), bool(a.get("crop", False)), float(a.get("tilt_db", 0.0)))
        if not 0.0 <= aug.speed <= 0.2:
            raise UserError(f"train.augment.speed = {aug.speed}: must be between 0 and 0.2 "
                            f"(a relative speed change, e.g. 0.04)")
        if not 0.0 <= aug.tilt_db <= 12.0:
            raise UserError(f"train.augment.tilt_db = {aug.tilt_db}: must be between 0 and 12 "
                            f"dB per octave")
        return aug

    @property
    def active(self) -> bool:
        return bool(self.speed or self.crop or self.tilt_db)

    def margin(self, window: int) -> int:
        """Extra clean samples a stored training window needs beyond the model input."""
        if not self.active:
            return 0
        room = math.ceil(window * self.speed) + 2 * _TAPS + 2
        return room + (window // 8 if self.crop else 0)

    def apply(self, x: np.ndarray, window: int, rng: np.random.Generator) -> np.ndarray:
        """[n, window] augmented windows from stored windows x [n, window + margin]."""
        n, length = x.shape
        if not self.active:
            return centre(x, window)
        rate = 1.0 + rng.uniform(-self.speed, self.speed, n)
        span = rate * (window - 1)
        lo, hi = _TAPS, length - 1 - _TAPS - span
        start = rng.uniform(lo, hi) if self.crop else (lo + hi) / 2
        pos = start[:, None] + rate[:, None] * np.arange(window)[None, :]
        out = _interpolate(x, pos)
        if self.tilt_db:
            slope = rng.uniform(-self.tilt_db, self.tilt_db, n)
            octaves = np.log2(np.maximum(np.fft.rfftfreq(window), 1.0 / 64) / 0.25)
            gain = 10.0 ** (slope[:, None] * octaves[None, :] / 20.0)
            out = np.fft.irfft(np.fft.rfft(out, axis=1) * gain, window, axis=1)
        return out.astype(np.float32)


def centre(x: np.ndarray, window: int) -> np.ndarray:
    """The middle `window` samples of each stored window (no augmentation)."""
    start = (x.shape[1] - window) // 2
    return x[:, start:start + window]


_PHASES = 256  # fractional positions are rounded to 1/256 sample: far below the signal's detail
_CUTOFF = 0.94  # in units of Nyquist: room for resampling down by the largest speed change


def _weights() -> np.ndarray:
    """[phase, tap] Hann-windowed sinc weights, each row summing to 1."""
    frac = np.arange(_PHASES)[:, None] / _PHASES
    d = np.arange(-_TAPS + 1, _TAPS + 1)[None, :] - frac
    w = _CUTOFF * np.sinc(_CUTOFF * d) * (0.5 + 0.5 * np.cos(np.pi * d / _TAPS))
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


_W = _weights()


def _interpolate(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """x sampled at fractional positions `pos` (rows of x and pos correspond)."""
    base = np.floor(pos).astype(np.int64)
    phase = np.minimum(np.rint((pos - base) * _PHASES).astype(np.int64), _PHASES - 1)
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    index = base + (np.arange(len(x)) * x.shape[1])[:, None]
    out = np.zeros(pos.shape, dtype=np.float32)
    for j, k in enumerate(range(-_TAPS + 1, _TAPS + 1)):
        out += flat[index + k] * _W[phase, j]
    return out
