"""Synthetic bearing vibration, seeded and bit-reproducible.

Ten classes in the style of the CWRU bearing data set: a healthy bearing and faults on the
inner race, a ball and the outer race, each at three defect diameters (7, 14, 21 mils).
A fault makes a train of impacts at the fault's characteristic frequency, which follows from
the bearing geometry and the shaft speed of each window; every impact rings the housing's
structural resonances. The nuisances that make real data hard are here as well: the speed
and load change from window to window, the resonances drift, the impact spacing slips, the
load zone modulates inner-race and ball impacts, and the severities overlap in amplitude.

`spectral_baseline` measures how hard the classes are for a linear model on the spectrum.
"""

from __future__ import annotations

import numpy as np

from drsn_edge.errors import UserError

CLASSES: list[str] = [
    "normal",
    "inner_race_007", "inner_race_014", "inner_race_021",
    "ball_007", "ball_014", "ball_021",
    "outer_race_007", "outer_race_014", "outer_race_021",
]

# SKF 6205-2RS JEM, the drive-end bearing of the CWRU rig.
BEARING = {
    "balls": 9,
    "ball_diameter_mm": 7.94,
    "pitch_diameter_mm": 39.04,
    "contact_angle_deg": 0.0,
}

MIL_MM = 0.0254

# Per fault location: mean impact strength at the sensor (inner-race and ball impacts cross
# more interfaces on their way out) and the range of the second mode's share.
_LOCATION = {
    "inner_race": {"gain": 0.75, "mode2": (0.35, 0.85)},
    "ball": {"gain": 0.55, "mode2": (0.30, 0.80)},
    "outer_race": {"gain": 1.00, "mode2": (0.45, 0.95)},
}

# Per defect diameter: impact amplitude and force-pulse width ranges, deliberately overlapping
# so that no single window feature tells the severities apart.
_SEVERITY = {
    7: {"amp": (0.45, 1.00), "pulse_us": (15.0, 40.0)},
    14: {"amp": (0.75, 1.45), "pulse_us": (30.0, 60.0)},
    21: {"amp": (1.05, 1.95), "pulse_us": (45.0, 80.0)},
}


def parse_class(name: str) -> tuple[str, int]:
    """'inner_race_014' -> ('inner_race', 14); 'normal' -> ('normal', 0)."""
    if name == "normal":
        return "normal", 0
    location, mils = name.rsplit("_", 1)
    return location, int(mils)


def fault_orders() -> dict[str, float]:
    """Characteristic frequencies as multiples of the shaft rate (orders)."""
    n = BEARING["balls"]
    ratio = BEARING["ball_diameter_mm"] / BEARING["pitch_diameter_mm"]
    cos_a = np.cos(np.deg2rad(BEARING["contact_angle_deg"]))
    return {
        "ftf": 0.5 * (1 - ratio * cos_a),
        "bpfo": 0.5 * n * (1 - ratio * cos_a),
        "bpfi": 0.5 * n * (1 + ratio * cos_a),
        "bsf": 0.5 / ratio * (1 - (ratio * cos_a) ** 2),
    }


def fault_frequencies(shaft_hz):
    """BPFO, BPFI, BSF and FTF in Hz for a shaft rate in Hz (scalar or array).

    A spall on a ball strikes both races once per spin revolution, so ball-fault impacts
    repeat at 2 x BSF ("ball_impacts" here).
    """
    orders = fault_orders()
    out = {k: np.asarray(shaft_hz, dtype=np.float64) * v for k, v in orders.items()}
    out["ball_impacts"] = 2.0 * out["bsf"]
    return out


def _impact_rate(location: str, shaft_hz: np.ndarray) -> np.ndarray:
    f = fault_frequencies(shaft_hz)
    return {"inner_race": f["bpfi"], "ball": f["ball_impacts"], "outer_race": f["bpfo"]}[location]


def _rolling_speed_m_s(location: str, shaft_hz: np.ndarray) -> np.ndarray:
    # Speed at which the defect edge passes under the contact: sets the time between the
    # ball entering the spall and striking its far edge.
    o = fault_orders()
    d = BEARING["ball_diameter_mm"] * 1e-3
    dp = BEARING["pitch_diameter_mm"] * 1e-3
    if location == "outer_race":
        return np.pi * o["ftf"] * shaft_hz * (dp + d)
    if location == "inner_race":
        return np.pi * (1 - o["ftf"]) * shaft_hz * (dp - d)
    return np.pi * d * o["bsf"] * shaft_hz


def _load_zone(theta: np.ndarray, floor: np.ndarray) -> np.ndarray:
    # Stribeck load distribution with half the bearing loaded, plus a floor because unloaded
    # rolling elements still touch the races (preload, centrifugal force).
    q = np.clip(np.cos(theta), 0.0, None) ** 1.5
    return floor + (1.0 - floor) * q


def _resonance(freqs: np.ndarray, fn: np.ndarray, zeta: np.ndarray) -> np.ndarray:
    # Second-order band-pass with unit gain at fn: the acceleration a lightly damped mode
    # shows at the sensor after a force impulse.
    r = freqs[None, :] / fn[:, None]
    two_z_r = 2j * zeta[:, None] * r
    return two_z_r / (1.0 - r**2 + two_z_r)


def _class_windows(label: int, n: int, window: int, fs: float, rng: np.random.Generator):
    location, mils = parse_class(CLASSES[label])
    pad = int(np.ceil(0.03 * fs))  # room for ringing from impacts before the window starts
    total = window + pad
    freqs = np.fft.rfftfreq(total, 1.0 / fs)

    # Operating point: CWRU ran 0-3 HP at 1797-1730 rpm; speed falls with load.
    load = rng.uniform(0.0, 3.0, n)
    rpm = np.clip(1797.0 - 22.5 * load + rng.normal(0.0, 4.0, n), 1720.0, 1800.0)
    shaft_hz = rpm / 60.0

    # Two housing modes; their frequencies drift with mounting and temperature. Scaled down
    # when fs is low so they stay below Nyquist.
    scale = min(1.0, 0.42 * fs / 4700.0)
    f1 = rng.uniform(2600.0, 3400.0, n) * scale
    f2 = rng.uniform(3900.0, 4700.0, n) * scale
    z1 = rng.uniform(0.03, 0.07, n)
    z2 = rng.uniform(0.03, 0.07, n)
    mode2 = rng.uniform(*_LOCATION.get(location, {"mode2": (0.3, 0.9)})["mode2"], n)
    modes = _resonance(freqs, f1, z1) + mode2[:, None] * _resonance(freqs, f2, z2)

    signal = np.zeros((n, total))
    fault_hz = np.zeros(n)
    amplitude = np.zeros(n)

    if location != "normal":
        sev = _SEVERITY[mils]
        amplitude = (rng.uniform(*sev["amp"], n) * _LOCATION[location]["gain"]
                     * (1.0 + 0.12 * load))
        pulse_s = rng.uniform(*sev["pulse_us"], n) * 1e-6
        fault_hz = _impact_rate(location, shaft_hz)
        slip = rng.uniform(0.01, 0.02, n)
        # Entry into the spall is a soft step, exit a hard strike; their gap grows with size.
        gap = (mils * MIL_MM * 1e-3 / _rolling_speed_m_s(location, shaft_hz)
               * rng.uniform(0.8, 1.25, n))
        entry = rng.uniform(0.15, 0.45, n)

        period = 1.0 / fault_hz
        k_max = int(np.ceil(total / fs / (period.min() * 0.9))) + 2
        steps = period[:, None] * (1.0 + slip[:, None] * rng.standard_normal((n, k_max)))
        start = rng.uniform(0.0, 1.0, n)[:, None] * period[:, None]  # random phase of the train
        times = start + np.cumsum(steps, axis=1) - steps[:, :1]
        amps = np.exp(rng.normal(0.0, 0.15, (n, k_max)))  # impact-to-impact scatter
        amps[times >= total / fs] = 0.0

        if location in ("inner_race", "ball"):
            # Inner-race defects pass the load zone once per shaft turn, balls once per cage turn.
            carrier = shaft_hz if location == "inner_race" else shaft_hz * fault_orders()["ftf"]
            theta = 2 * np.pi * carrier[:, None] * times + rng.uniform(0, 2 * np.pi, n)[:, None]
            amps *= _load_zone(theta, rng.uniform(0.1, 0.4, n)[:, None])

        pulse = np.exp(-0.5 * (2 * np.pi * freqs[None, :] * pulse_s[:, None]) ** 2)
        pair = entry[:, None] + np.exp(-2j * np.pi * freqs[None, :] * gap[:, None])
        kernel = modes * pulse * pair
        kernel /= np.abs(np.fft.irfft(kernel, total, axis=1)).max(axis=1, keepdims=True)

        # Impacts placed at exact (sub-sample) times in the frequency domain; chunked to keep
        # the [window, impact, frequency] phase tensor small.
        spectrum = np.empty((n, freqs.size), dtype=np.complex128)
        for lo in range(0, n, 32):
            hi = min(lo + 32, n)
            phase = np.exp(-2j * np.pi * times[lo:hi, :, None] * freqs[None, None, :])
            spectrum[lo:hi] = np.einsum("nk,nkf->nf", amps[lo:hi], phase)
        signal += np.fft.irfft(spectrum * kernel * amplitude[:, None], total, axis=1)

    # Rolling noise excites the same modes in every bearing, healthy or not.
    rough = np.fft.rfft(rng.standard_normal((n, total)), axis=1) * modes
    rough = np.fft.irfft(rough, total, axis=1)
    rough *= (rng.uniform(0.02, 0.05, n) * (1.0 + 0.1 * load) / rough.std(axis=1))[:, None]
    signal += rough
    signal = signal[:, pad:]

    # Shaft harmonics from unbalance and misalignment, present in every class.
    t = np.arange(window) / fs
    for order, (lo, hi) in ((1, (0.03, 0.09)), (2, (0.01, 0.05)), (3, (0.005, 0.025))):
        a = rng.uniform(lo, hi, n) * (1.0 + 0.1 * load)
        ph = rng.uniform(0.0, 2 * np.pi, n)
        angle = 2 * np.pi * order * shaft_hz[:, None] * t[None, :] + ph[:, None]
        signal += a[:, None] * np.sin(angle)

    signal += rng.uniform(0.01, 0.03, n)[:, None] * rng.standard_normal((n, window))
    signal *= np.exp(rng.normal(0.0, 0.1, n))[:, None]  # sensor mounting / sensitivity

    meta = {
        "shaft_hz": shaft_hz,
        "rpm": rpm,
        "load_hp": load,
        "fault_hz": fault_hz,
        "severity_mils": np.full(n, mils, dtype=np.int64),
        "resonance_hz": f1,
        "impact_amplitude": amplitude,
    }
    return signal.astype(np.float32), meta


def generate(n_per_class: int, window: int, fs: float, seed: int):
    """Clean windows [N, window] float32, labels [N] int64 and per-window metadata.

    Class-major order (all of class 0, then class 1, ...). Each class has its own random
    stream spawned from `seed`, so the output depends only on the arguments.
    """
    if n_per_class < 1:
        raise UserError(f"synthetic data: {n_per_class} windows per class requested; the "
                        f"per-class counts in [data] and [eval] must be at least 1")
    if window < 64:
        raise UserError(f"synthetic data: data.window = {window} samples is too short to hold "
                        f"a fault impact (use >= 64, e.g. 1024)")
    streams = np.random.SeedSequence(seed).spawn(len(CLASSES))
    xs, metas = [], []
    for label, stream in enumerate(streams):
        rng = np.random.default_rng(stream)
        x, meta = _class_windows(label, n_per_class, window, float(fs), rng)
        xs.append(x)
        metas.append(meta)
    x = np.concatenate(xs)
    y = np.repeat(np.arange(len(CLASSES), dtype=np.int64), n_per_class)
    meta = {k: np.concatenate([m[k] for m in metas]) for k in metas[0]}
    return x, y, meta


def log_spectrum(x: np.ndarray) -> np.ndarray:
    return np.log(np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64), axis=1)) + 1e-6)


def spectral_baseline(x_train, y_train, x_test, y_test, ridge: float = 1.0) -> float:
    """Test accuracy of a one-vs-all ridge classifier on standardised log magnitude spectra.

    A yardstick for how much of the task a linear model on the spectrum already solves.
    """
    f_train, f_test = log_spectrum(x_train), log_spectrum(x_test)
    mean, std = f_train.mean(axis=0), f_train.std(axis=0) + 1e-8
    a = np.hstack([(f_train - mean) / std, np.ones((len(f_train), 1))])
    b = np.hstack([(f_test - mean) / std, np.ones((len(f_test), 1))])
    y_train = np.asarray(y_train, dtype=np.int64)
    classes = np.unique(y_train)
    targets = np.where(y_train[:, None] == classes[None, :], 1.0, -1.0)
    reg = ridge * np.eye(a.shape[1])
    reg[-1, -1] = 0.0  # the bias is not shrunk
    w = np.linalg.solve(a.T @ a + reg, a.T @ targets)
    pred = classes[np.argmax(b @ w, axis=1)]
    return float(np.mean(pred == np.asarray(y_test)))
